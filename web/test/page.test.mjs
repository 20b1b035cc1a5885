// Browser tests of mote's web page (dist/web, built by ./build.sh), in
// Debian's headless Chromium through playwright-core, served by
// python3 -m http.server on 127.0.0.1 (no compression, no COOP/COEP).
// Run by ./build.sh test (node --test web/test/). The tests share one page
// and run in order: each starts from the state the previous one left.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync, openSync, closeSync, ftruncateSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import * as L from "./lib.mjs";

const ref = (name) => readFileSync(path.join(L.shared, "reference", name), "utf8");
const greedy = ref("greedy_once_upon_a_time.txt");
const seeded = ref("seed42_once_upon_a_time.txt");
const models = path.join(L.shared, "models");
const defaultModel = readFileSync(path.join(L.webDir, "models", "stories260K.mote"));

let dir, srv, browser, page, errors;
const origin = () => srv.url.replace(/\/$/, "");
const offOrigin = [];

before(async () => {
	dir = L.site();
	const fx = path.join(dir, "fixtures");
	writeFileSync(path.join(fx, "url-model.mote"), defaultModel);
	writeFileSync(path.join(fx, "url-model.mote.gz"), gzipSync(defaultModel));
	writeFileSync(path.join(fx, "tokenizer.bin"), readFileSync(path.join(models, "tokenizer.bin")));
	// A file too large for the page: sparse, so it costs no disk.
	const fd = openSync(path.join(fx, "huge.bin"), "w");
	ftruncateSync(fd, 1200 * 1000 * 1000);
	closeSync(fd);
	srv = await L.serve(dir);
	browser = await L.launch();
	page = await browser.context.newPage();
	errors = L.watch(page);
	page.on("request", (r) => {
		if (!r.url().startsWith(origin()) && !r.url().startsWith("data:")) {
			offOrigin.push(r.url());
		}
	});
	await page.goto(srv.url);
	await L.ready(page);
});

after(async () => {
	await browser?.close();
	await srv?.close();
});

// modelRequests lists the model files the server was asked for since i.
const modelRequests = (i) => srv.requests.slice(i).filter((p) => /^\/(models|fixtures)\//.test(p));

test("the default model is the exact fp32 stories260K, preselected", async () => {
	const picked = await page.$eval("#model", (s) => s.options[s.selectedIndex].textContent);
	assert.match(picked, /stories260K fp32 \(exact\)/);
	const options = await page.$$eval("#model option", (os) => os.map((o) => o.textContent));
	assert.ok(options.length >= 1, `options: ${options}`);
	assert.match(await page.textContent("#status"), /stories260K fp32 \(exact\) · mote f32/);
	// no SharedArrayBuffer needed, and none available: no COOP/COEP here
	assert.equal(await page.evaluate(() => crossOriginIsolated), false);
});

test("temperature 0 gives the reference's greedy text", async () => {
	await L.setControls(page, { prompt: "Once upon a time", temperature: 0, topp: 0.9, seed: "", maxTokens: 256 });
	const r = await L.generate(page);
	assert.equal(r.output + "\n", greedy);
	assert.equal(r.error, "");
	assert.ok(r.tokPerSec > 0 && r.ttftMs > 0, r.status);
	assert.match(r.status, /tok\/s/);
	assert.match(r.status, /first token \d+ ms/);
});

test("seed 42, temperature 1, top-p 0.9 gives the reference's seeded text", async () => {
	await L.setControls(page, { temperature: 1, topp: 0.9, seed: 42, maxTokens: 256 });
	const r = await L.generate(page);
	assert.equal(r.output + "\n", seeded);
	assert.match(r.status, /seed 42/);
});

test("pressing Generate clears #output at once; Stop mid-generation, then Generate again", async () => {
	// A model slow enough to stop mid-way on any machine: the 15M shape with
	// random weights (through the worker's benchmark load), 256 tokens.
	await L.loading(page, () =>
		page.evaluate(() =>
			motePage.send({ type: "load", random: { shape: "15M", dtype: "q8", groupSize: 32, seed: 1 }, tokenizer: "fixtures/tokenizer.bin" }),
		),
	);
	assert.equal(await page.textContent("#error"), "");
	await L.setControls(page, { temperature: 0, seed: "", maxTokens: 256 });
	// Click Stop from inside the page as soon as text shows; record the
	// length of #output at every change from the click on.
	const runs = await L.counter(page, "runs");
	const seen = await page.evaluate(
		() =>
			new Promise((resolve) => {
				const out = document.querySelector("#output");
				const seen = { lengths: [] };
				const obs = new MutationObserver(() => {
					seen.lengths.push(out.textContent.length);
					if (out.textContent.length > 0) {
						obs.disconnect();
						document.querySelector("#stop").click();
						resolve(seen);
					}
				});
				obs.observe(out, { childList: true, characterData: true, subtree: true });
				document.querySelector("#generate").click();
			}),
	);
	assert.equal(seen.lengths[0], 0, "the first change after Generate is not the clear");
	await L.until(page, "runs", runs, 60000);
	assert.equal(await page.$eval("#status", (s) => s.dataset.state), "stopped");
	assert.match(await page.textContent("#status"), /stopped/);
	const stopped = await page.textContent("#output");
	const full = await L.generate(page, 300000);
	assert.equal(full.state, "length", full.status);
	assert.ok(stopped.length > 0, "no text before Stop");
	assert.ok(full.output.startsWith(stopped), `the stopped text is not a prefix of the full run: ${JSON.stringify(stopped)}`);
	assert.ok(stopped.length < full.output.length, `Stop did not stop: ${stopped.length} of ${full.output.length} characters`);

	await L.loading(page, () => page.selectOption("#model", "stories260K"));
	const r = await L.generate(page);
	assert.equal(r.output + "\n", greedy);
});

// native runs bin/mote on a model file: the text the page must show.
function native(model, tokenizer) {
	const args = ["run", model, "-t", "0", "-n", "256", "-i", "Once upon a time"];
	if (tokenizer) {
		args.splice(2, 0, "-z", tokenizer);
	}
	return execFileSync(path.join(L.root, "bin", "mote"), args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
}


test("a quantized model through #model-file (llama2.c int8 with its tokenizer)", async () => {
	const q = path.join(models, "stories260K_q80_gs4.bin");
	const tok = path.join(models, "tok512.bin");
	await L.loading(page, () => page.setInputFiles("#model-file", [q, tok]));
	assert.equal(await page.textContent("#error"), "");
	assert.match(await page.textContent("#status"), /stories260K_q80_gs4\.bin \+ tok512\.bin · llama2c-ak42 q8/);
	await L.setControls(page, { temperature: 0, seed: "", maxTokens: 256 });
	const r = await L.generate(page);
	assert.equal(r.output + "\n", native(q, tok));
});

test("the catalogue's quantized variants load from the picker and match mote run", async () => {
	const ids = await page.$$eval("#model option", (os) => os.map((o) => o.value).filter((v) => v && v !== "stories260K"));
	for (const id of ids) {
		await L.loading(page, () => page.selectOption("#model", id));
		assert.equal(await page.textContent("#error"), "", id);
		const r = await L.generate(page);
		assert.equal(r.output + "\n", native(path.join(L.webDir, "models", `${id}.mote`)), id);
	}
	await L.loading(page, () => page.selectOption("#model", "stories260K"));
});

test("a model dropped on the page loads", async () => {
	const f = path.join(L.webDir, "models", "stories260K-q4.mote");
	await L.loading(page, () =>
		page.evaluate((b64) => {
			const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
			const dt = new DataTransfer();
			dt.items.add(new File([bytes], "dropped-q4.mote"));
			document.querySelector("#drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
		}, readFileSync(f).toString("base64")),
	);
	assert.equal(await page.textContent("#error"), "");
	assert.match(await page.textContent("#status"), /^dropped-q4\.mote · mote q4/);
	const r = await L.generate(page);
	assert.equal(r.output + "\n", native(f));
	await L.loading(page, () => page.selectOption("#model", "stories260K"));
});

test("a corrupt file shows #error and the page keeps generating with the previous model", async () => {
	const bad = Buffer.from(defaultModel.subarray(0, 4096));
	bad[100] ^= 0xff;
	await L.loading(page, () => page.setInputFiles("#model-file", { name: "corrupt.mote", mimeType: "application/octet-stream", buffer: bad }));
	const e = await page.textContent("#error");
	assert.match(e, /^Could not load the chosen file: .+ The page keeps using stories260K fp32 \(exact\)\.$/);
	await L.loading(page, () => page.setInputFiles("#model-file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello, not a model") }));
	assert.match(await page.textContent("#error"), /Could not load/);
	const r = await L.generate(page);
	assert.equal(r.output + "\n", greedy);
	assert.equal(r.error, "", "a good run clears the error");
});

test("a failed download and a model too large for memory show #error", async () => {
	await page.fill("#model-url", "fixtures/missing.mote");
	await L.loading(page, () => page.click("#load-url"));
	assert.match(await page.textContent("#error"), /download of fixtures\/missing\.mote failed: the server answered 404/);
	await page.fill("#model-url", "fixtures/huge.bin");
	await L.loading(page, () => page.click("#load-url"));
	assert.match(await page.textContent("#error"), /fixtures\/huge\.bin is 1200\.0 MB, more than this page can hold in memory/);
	const r = await L.generate(page);
	assert.equal(r.output + "\n", greedy);
});

test("a same-origin model through #model-url, #progress to 100 %, then cached across a reload", async () => {
	for (const f of ["fixtures/url-model.mote", "fixtures/url-model.mote.gz"]) {
		const i = srv.requests.length;
		await page.fill("#model-url", f);
		await L.loading(page, () => page.click("#load-url"));
		assert.equal(await page.textContent("#error"), "", f);
		assert.equal(await page.getAttribute("#progress", "value"), "100", f);
		assert.equal(await page.evaluate(() => document.querySelector("#progress").position), 1, f);
		assert.deepEqual(modelRequests(i), ["/" + f], f);
		const r = await L.generate(page);
		assert.equal(r.output + "\n", greedy, f);
	}

	const i = srv.requests.length;
	await page.reload();
	await L.ready(page);
	assert.match(await page.textContent("#progress-text"), /from the page's cache/);
	await page.fill("#model-url", "fixtures/url-model.mote");
	await L.loading(page, () => page.click("#load-url"));
	assert.match(await page.textContent("#progress-text"), /from the page's cache/);
	assert.deepEqual(modelRequests(i), [], "model bytes fetched again after a reload");
	await L.setControls(page, { temperature: 0 });
	const r = await L.generate(page);
	assert.equal(r.output + "\n", greedy);
});

test("clearing the cache makes the next visit read the model from the network", async () => {
	assert.match(await page.textContent("#clear-cache"), /\([1-9]\d*\)/);
	await page.click("#clear-cache");
	await page.waitForFunction(() => /cache cleared/.test(document.querySelector("#status").textContent), null, { timeout: 10000 });
	assert.match(await page.textContent("#clear-cache"), /\(0\)/);
	await page.reload();
	await L.ready(page);
	// (the server may not see a request: the browser's HTTP cache can answer)
	assert.doesNotMatch(await page.textContent("#progress-text"), /from the page's cache/);
	assert.match(await page.textContent("#clear-cache"), /\(1\)/);
});

test("a screenshot of the page, no console errors, nothing fetched beyond the origin", async () => {
	await L.setControls(page, { prompt: "Once upon a time", temperature: 0, seed: "", maxTokens: 256 });
	await L.generate(page);
	mkdirSync(L.artifacts, { recursive: true });
	await page.screenshot({ path: path.join(L.artifacts, "web-page.png"), fullPage: true });
	assert.deepEqual(offOrigin, []);
	// the one expected failure: the download of fixtures/missing.mote
	assert.deepEqual(errors.filter((e) => !/404.*fixtures\/missing\.mote/.test(e)), []);
});
