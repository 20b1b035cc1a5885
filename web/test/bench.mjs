// Browser benchmarks of mote's web page (./build.sh bench runs this): in
// Debian's headless Chromium against dist/web served by python3 -m
// http.server, it measures
//   - time from navigation to the first token, cold (fresh profile) and
//     cached (reload: wasm from the HTTP cache, model from the Cache API),
//     with Generate pressed the moment it is enabled;
//   - what the server sent before the first token, with each file's gzip -9
//     size (the server compresses nothing: gzip is what a host would send);
//   - tok/s as the page reports it (worker-side: tokens after the first over
//     the time since the first, greedy, best of RUNS) for stories260K fp32
//     and its quantized variants, and the 15M shape (random weights, q8 and
//     q4, through mote.random; tokenizer ../shared/models/tokenizer.bin);
//   - embeddings per second in the worker (mote.embedBench, the loop of
//     `mote embed --bench`) with the page's sentence encoder, for the
//     12-token sentence and the 128-token paragraph of docs/EMBED.md,
//     best of RUNS.
// Prints Markdown tables; MOTE_BENCH_JSON=file also writes the numbers.
// `node web/test/bench.mjs embed` measures only the embeddings;
// MOTE_BENCH_ENCODER=file measures another encoder (a GGUF or .mote) instead
// of the page's.
import { readFileSync, writeFileSync, copyFileSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import * as L from "./lib.mjs";

const RUNS = Number(process.env.MOTE_BENCH_RUNS || 3);

// firstToken navigates to the page and returns ms from navigation start to
// the first token, Generate being clicked as soon as it is enabled.
async function firstToken(page, url) {
	await page.addInitScript(() => {
		window.moteBench = new Promise((resolve) => {
			const obs = new MutationObserver(() => {
				const g = document.querySelector("#generate");
				const out = document.querySelector("#output");
				if (g && !g.disabled && !window.moteClicked) {
					window.moteClicked = performance.now();
					g.click();
				}
				if (window.moteClicked && out && out.textContent.length > 0) {
					obs.disconnect();
					resolve({ ready: window.moteClicked, first: performance.now() });
				}
			});
			obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
		});
	});
	await page.goto(url);
	return page.evaluate(() => window.moteBench);
}

// gz is a file's gzip -9 size (the command, as build.sh reports sizes).
function gz(file) {
	return execFileSync("gzip", ["-9c", file], { maxBuffer: 1 << 30 }).length;
}

async function startup(srv, dir) {
	const browser = await L.launch();
	const out = {};
	try {
		for (const kind of ["cold", "cached"]) {
			const page = await browser.context.newPage();
			const i = srv.sent.length;
			const t = await firstToken(page, srv.url);
			await L.until(page, "runs", 0);
			const files = [...new Set(srv.sent.slice(i).map((p) => p.replace(/\?.*$/, "")))].map((p) => {
				const f = path.join(dir, p === "/" ? "index.html" : p);
				return { path: p, raw: statSync(f).size, gzip: gz(f) };
			});
			out[kind] = { readyMs: t.ready, firstTokenMs: t.first, files };
			await page.close();
		}
	} finally {
		await browser.close();
	}
	return out;
}

// speed loads each model in turn (load(page) starts it) and returns the
// best tok/s of RUNS greedy generations.
async function speed(srv, models) {
	const browser = await L.launch();
	const out = [];
	try {
		const page = await browser.context.newPage();
		await page.goto(srv.url);
		await L.ready(page);
		for (const m of models) {
			await L.loading(page, () => m.load(page), 300000);
			const err = await page.textContent("#error");
			if (err) {
				throw new Error(`${m.name}: ${err}`);
			}
			await L.setControls(page, { prompt: "Once upon a time", temperature: 0, seed: "", maxTokens: m.steps });
			let best = 0;
			let tokens = 0;
			for (let r = 0; r < RUNS; r++) {
				const g = await L.generate(page, 600000);
				best = Math.max(best, g.tokPerSec);
				tokens = Number((/ (\d+) tokens/.exec(g.status) || [])[1]);
			}
			out.push({ model: m.name, tokens, tokPerSec: best });
		}
	} finally {
		await browser.close();
	}
	return out;
}

// EMBED_RUNS: embeddings timed per measurement (after one warm-up).
const EMBED_RUNS = { sentence: 40, paragraph: 6 };

// embedSpeed loads the page's sentence encoder (#load-encoder) and returns
// the best embeddings per second of RUNS measurements per text.
async function embedSpeed(srv) {
	const browser = await L.launch();
	const out = [];
	try {
		const page = await browser.context.newPage();
		await page.goto(srv.url);
		await L.ready(page);
		if (process.env.MOTE_BENCH_ENCODER) {
			const name = "encoder" + path.extname(process.env.MOTE_BENCH_ENCODER);
			copyFileSync(process.env.MOTE_BENCH_ENCODER, path.join(dir, "fixtures", name));
			await page.evaluate((u) => motePage.send({ type: "load-encoder", label: u, url: u }), "fixtures/" + name);
		} else {
			await page.click("#load-encoder");
		}
		await page.waitForFunction(() => Number(document.querySelector("#emb-status").dataset.loads) > 0, null, { timeout: 300000 });
		const err = await page.textContent("#emb-error");
		if (err) {
			throw new Error(`the encoder: ${err}`);
		}
		const encoder = await page.textContent("#emb-status");
		for (const which of ["sentence", "paragraph"]) {
			let best = null;
			for (let r = 0; r < RUNS; r++) {
				const m = await page.evaluate(
					async ([w, n]) => {
						const before = motePage.last["embed-bench-result"];
						motePage.send({ type: "embed-bench", which: w, runs: n });
						for (;;) {
							await new Promise((res) => setTimeout(res, 50));
							const got = motePage.last["embed-bench-result"];
							if (got && got !== before) {
								return got;
							}
						}
					},
					[which, EMBED_RUNS[which]],
				);
				if (m.error) {
					throw new Error(`embed-bench ${which}: ${m.error}`);
				}
				if (!best || m.per_second > best.per_second) {
					best = m;
				}
			}
			out.push({ text: which, encoder, tokens: best.tokens, runs: best.runs, perSecond: best.per_second, msPerToken: best.ms_per_token });
		}
	} finally {
		await browser.close();
	}
	return out;
}

function embedTable(em) {
	const lines = ["", `Sentence embeddings in the page's worker (${em[0]?.encoder ?? ""}; best of ${RUNS}):`, ""];
	lines.push("| text | tokens | embeddings timed | emb/s | ms/token |", "|---|---|---|---|---|");
	for (const e of em) {
		lines.push(`| ${e.text} | ${e.tokens} | ${e.runs} | ${e.perSecond.toFixed(2)} | ${e.msPerToken.toFixed(2)} |`);
	}
	return lines.join("\n");
}

const dir = L.site();
copyFileSync(path.join(L.shared, "models", "tokenizer.bin"), path.join(dir, "fixtures", "tokenizer.bin"));
const srv = await L.serve(dir);
if (process.argv[2] === "embed") {
	try {
		const em = await embedSpeed(srv);
		console.log(embedTable(em));
		if (process.env.MOTE_BENCH_JSON) {
			writeFileSync(process.env.MOTE_BENCH_JSON, JSON.stringify({ embed: em }, null, 2));
		}
	} finally {
		await srv.close();
	}
	process.exit(0);
}
try {
	const st = await startup(srv, dir);
	const catalog = JSON.parse(readFileSync(path.join(L.webDir, "models.json"), "utf8")).models;
	const models = catalog.map((e) => ({
		name: `${e.label} (${(e.bytes / 1e6).toFixed(2)} MB)`,
		steps: 512,
		load: (page) => page.selectOption("#model", e.id),
	}));
	for (const dtype of ["q8", "q4"]) {
		models.push({
			name: `15M shape ${dtype} (random weights, group 32)`,
			steps: 256,
			load: (page) =>
				page.evaluate(
					(d) => motePage.send({ type: "load", random: { shape: "15M", dtype: d, groupSize: 32, seed: 1 }, tokenizer: "fixtures/tokenizer.bin" }),
					dtype,
				),
		});
	}
	const sp = await speed(srv, models);
	const em = await embedSpeed(srv);

	const lines = ["", "## mote in headless Chromium (" + (process.env.MOTE_CHROMIUM || "/usr/bin/chromium") + ")", ""];
	lines.push("| startup | Generate enabled | first token | sent by the server before it (200s, gzip -9) |", "|---|---|---|---|");
	for (const [kind, s] of Object.entries(st)) {
		const total = s.files.reduce((a, f) => a + f.gzip, 0);
		lines.push(`| ${kind} | ${s.readyMs.toFixed(0)} ms | ${s.firstTokenMs.toFixed(0)} ms | ${total} bytes in ${s.files.length} files |`);
	}
	lines.push("", "| file (cold start) | raw bytes | gzip -9 bytes |", "|---|---|---|");
	for (const f of st.cold.files) {
		lines.push(`| ${f.path} | ${f.raw} | ${f.gzip} |`);
	}
	lines.push("", `| model | tokens | tok/s (best of ${RUNS}) |`, "|---|---|---|");
	for (const s of sp) {
		lines.push(`| ${s.model} | ${s.tokens} | ${s.tokPerSec.toFixed(0)} |`);
	}
	console.log(lines.join("\n"));
	console.log(embedTable(em));
	if (process.env.MOTE_BENCH_JSON) {
		writeFileSync(process.env.MOTE_BENCH_JSON, JSON.stringify({ startup: st, speed: sp, embed: em }, null, 2));
	}
} finally {
	await srv.close();
}
