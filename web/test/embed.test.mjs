// Browser tests of the page's embeddings view (web/ui/embed.go, the
// worker's load-encoder/embed messages), in headless Chromium like
// page.test.mjs: the encoder loads on the first Compare, the page's vectors
// are bin/mote embed's bit for bit, the heat map shows the cosines of those
// vectors, the search ranks a clear case right, and bad input gets a clear
// error. The tests share one page and run in order.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import * as L from "./lib.mjs";

const catalog = JSON.parse(readFileSync(path.join(L.webDir, "models.json"), "utf8"));
const encoderFile = path.join(L.webDir, catalog.encoders[0].url.replace(/\?.*$/, ""));
const greedy = readFileSync(path.join(L.shared, "reference", "greedy_once_upon_a_time.txt"), "utf8");

let dir, srv, browser, page, errors;

before(async () => {
	dir = L.site();
	srv = await L.serve(dir);
	browser = await L.launch();
	page = await browser.context.newPage();
	errors = L.watch(page);
	await page.goto(srv.url);
	await L.ready(page);
});

after(async () => {
	await browser?.close();
	await srv?.close();
});

// cli is `bin/mote embed ENCODER -i TEXT --json`: {embedding, tokens}.
function cli(text) {
	const out = execFileSync(path.join(L.root, "bin", "mote"), ["embed", encoderFile, "-i", text, "--json"], {
		encoding: "utf8",
		stdio: ["ignore", "pipe", "pipe"],
	});
	return JSON.parse(out);
}

// cosine as the worker takes it: float32 values, products and sum in float64.
function cosine(a, b) {
	let s = 0;
	for (let k = 0; k < a.length; k++) {
		s += a[k] * b[k];
	}
	return s;
}

const runs = (p) => p.$eval("#emb-status", (s) => Number(s.dataset.runs));

// press clicks a button of the view and waits for the request to end
// (data-runs grows; an error found before any request is sent does not
// count: see refused).
async function press(id, timeout = 240000) {
	const n = await runs(page);
	await page.click(id);
	await page.waitForFunction((v) => Number(document.querySelector("#emb-status").dataset.runs) > v, n, { timeout, polling: 50 });
}

// refused clicks a button and expects the page to refuse the input at once
// with an error matching re, sending nothing to the worker.
async function refused(id, re) {
	const n = await runs(page);
	await page.evaluate(() => (window.lastEmbedded = motePage.last.embedded));
	await page.click(id);
	await page
		.waitForFunction((src) => new RegExp(src).test(document.querySelector("#emb-error").textContent), re.source, { timeout: 5000 })
		.catch(() => {});
	assert.match(await page.textContent("#emb-error"), re);
	assert.equal(await runs(page), n);
	assert.equal(await page.evaluate(() => motePage.last.embedded === window.lastEmbedded), true, "a request reached the worker");
}

// lastVectors reads the vectors of the worker's last "embedded" message,
// the ones the heat map and the ranking were computed from.
const lastVectors = () =>
	page.evaluate(() => {
		const m = motePage.last.embedded;
		return { kind: m.kind, counts: m.counts, vectors: m.embeddings.map((v) => Array.from(v)), f32: m.embeddings.every((v) => v instanceof Float32Array) };
	});

const sentences = [
	"The cat sat on the mat.",
	"A kitten is resting on a rug.",
	"Quantized language models can run in a web browser.",
	"The stock market fell sharply today.",
	"Lily found a big red ball in the garden.",
];

test("the first Compare loads the encoder in the worker; vectors equal bin/mote embed's, bit for bit", async () => {
	assert.equal(await page.$eval("#emb-status", (s) => s.dataset.state), "idle");
	assert.match(await page.textContent("#emb-status"), /not loaded yet/);
	await page.fill("#sentences", sentences.join("\n") + "\n"); // a trailing newline is fine
	await press("#compare");
	assert.equal(await page.textContent("#emb-error"), "");
	assert.equal(await page.$eval("#emb-status", (s) => s.dataset.loads), "1");
	assert.match(await page.textContent("#emb-status"), /all-MiniLM-L6-v2 .* · mote .* · 16\.\d+ MB · 384 dimensions/);
	assert.equal(await page.getAttribute("#emb-progress", "value"), "100");
	// the encoder lives in the worker only: the page thread's engine has none
	assert.equal(await page.evaluate(() => mote.encoders().length), 0);

	const got = await lastVectors();
	assert.equal(got.kind, "matrix");
	assert.ok(got.f32, "the vectors are not Float32Arrays");
	assert.equal(got.vectors.length, sentences.length);
	for (let i = 0; i < sentences.length; i++) {
		const want = cli(sentences[i]);
		assert.equal(got.counts[i], want.tokens, sentences[i]);
		assert.equal(got.vectors[i].length, 384);
		const diff = got.vectors[i].findIndex((x, k) => x !== Math.fround(want.embedding[k]));
		assert.equal(diff, -1, `${sentences[i]}: component ${diff}: page ${got.vectors[i][diff]}, cli ${want.embedding[diff]}`);
	}
});

test("the heat map shows the cosines of those vectors", async () => {
	const want = sentences.map((s) => cli(s).embedding.map(Math.fround));
	const cells = await page.$$eval("#heatmap td.cell", (tds) =>
		tds.map((td) => ({ i: Number(td.dataset.i), j: Number(td.dataset.j), cos: Number(td.dataset.cos), text: td.textContent })),
	);
	assert.equal(cells.length, sentences.length * sentences.length);
	for (const c of cells) {
		const v = cosine(want[c.i], want[c.j]);
		assert.equal(c.cos, v, `cell ${c.i},${c.j}`);
		assert.equal(c.text, v.toFixed(2), `cell ${c.i},${c.j}`);
	}
	const at = (i, j) => cells.find((c) => c.i === i && c.j === j).cos;
	for (let i = 0; i < sentences.length; i++) {
		assert.ok(Math.abs(at(i, i) - 1) < 1e-6, `diagonal ${i}: ${at(i, i)}`);
	}
	assert.ok(at(0, 1) > at(0, 3) + 0.2, `cat/kitten ${at(0, 1)} vs cat/stocks ${at(0, 3)}`);
	const labels = await page.$$eval("#heatmap th.label", (ths) => ths.map((t) => t.textContent));
	assert.equal(labels[0], "1. The cat sat on the mat.");
});

test("the search ranks the list by cosine to the query; the clear answer comes first", async () => {
	const items = [
		"The stock market fell sharply today.",
		"How to change a flat tyre on a bicycle",
		"A simple recipe for homemade bread",
		"The football team won the championship",
		"Tips for growing tomatoes in your garden",
	];
	const query = "How do I bake a loaf of bread?";
	await page.fill("#query", query);
	await page.fill("#items", items.join("\n"));
	await press("#search");
	assert.equal(await page.textContent("#emb-error"), "");
	const shown = await page.$$eval("#results li", (lis) =>
		lis.map((li) => ({ line: Number(li.dataset.line), cos: Number(li.dataset.cos), text: li.querySelector(".item").textContent })),
	);
	assert.equal(shown.length, items.length);
	assert.equal(shown[0].text, "A simple recipe for homemade bread");
	const q = cli(query).embedding.map(Math.fround);
	const want = items.map((t, k) => ({ line: k + 1, cos: cosine(q, cli(t).embedding.map(Math.fround)) })).sort((a, b) => b.cos - a.cos);
	assert.deepEqual(
		shown.map((s) => ({ line: s.line, cos: s.cos })),
		want,
	);
	assert.ok(shown[0].cos > shown[1].cos + 0.1, `the answer is not clear: ${JSON.stringify(shown)}`);
	const got = await lastVectors();
	assert.equal(got.kind, "search");
	assert.equal(got.vectors[0].findIndex((x, k) => x !== q[k]), -1, "the query's vector differs from the CLI's");
});

test("bad input gets a clear error; the page keeps working", async () => {
	await page.fill("#sentences", "one\n\nthree");
	await refused("#compare", /^Line 2 is empty: write one sentence per line, without empty lines\.$/);
	await page.fill("#sentences", "only one");
	await refused("#compare", /^Write at least 2 sentences, one per line; got 1\.$/);
	await page.fill("#sentences", "   \n ");
	await refused("#compare", /^Write at least 2 sentences, one per line\.$/);
	await page.fill("#sentences", Array.from({ length: 25 }, (_, i) => `sentence ${i}`).join("\n"));
	await refused("#compare", /^25 lines are more than this page takes at once: at most 24 sentences/);
	await page.fill("#sentences", "short\n" + "x".repeat(2001));
	await refused("#compare", /^Line 2 has 2001 characters, more than the 2000 this page takes a line\.$/);
	await page.fill("#query", "  ");
	await refused("#search", /^Write a query first/);
	await page.fill("#query", "bread");
	await page.fill("#items", Array.from({ length: 201 }, (_, i) => `item ${i}`).join("\n"));
	await refused("#search", /at most 200 items/);

	// within the characters, beyond the encoder's 512 tokens: the worker says so
	await page.fill("#sentences", "fine\n" + "a ".repeat(600).trim());
	await press("#compare");
	assert.match(await page.textContent("#emb-error"), /^Line 2 is too long for the encoder: 602 tokens, more than its 512/);

	await page.fill("#sentences", sentences.slice(0, 2).join("\n"));
	await press("#compare");
	assert.equal(await page.textContent("#emb-error"), "");
	assert.equal(await page.$$eval("#heatmap td.cell", (tds) => tds.length), 4);
});

test("a screenshot of the view with a heat map and a ranking", async () => {
	await page.fill("#sentences", sentences.join("\n"));
	await press("#compare");
	await page.fill("#query", "How do I bake a loaf of bread?");
	await page.fill("#items", ["The stock market fell sharply today.", "A simple recipe for homemade bread", "Tips for growing tomatoes in your garden"].join("\n"));
	await press("#search");
	assert.equal(await page.textContent("#emb-error"), "");
	mkdirSync(L.artifacts, { recursive: true });
	await page.locator("section.embed").screenshot({ path: path.join(L.artifacts, "web-embeddings.png") });
});

test("after a reload the encoder comes from the page's cache, not the network", async () => {
	const i = srv.requests.length;
	await page.reload();
	await L.ready(page);
	assert.equal(await page.$eval("#emb-status", (s) => s.dataset.state), "idle");
	await page.click("#load-encoder");
	await page.waitForFunction(() => Number(document.querySelector("#emb-status").dataset.loads) > 0, null, { timeout: 120000 });
	assert.equal(await page.textContent("#emb-error"), "");
	assert.match(await page.textContent("#emb-progress-text"), /^encoder loaded in \d+ ms from the page's cache$/);
	assert.deepEqual(
		srv.requests.slice(i).filter((p) => p.includes(path.basename(encoderFile))),
		[],
	);
	await page.fill("#sentences", sentences.slice(0, 3).join("\n"));
	await press("#compare");
	assert.equal(await page.$$eval("#heatmap td.cell", (tds) => tds.length), 9);
});

test("the language model still generates the reference text; no console errors", async () => {
	await L.setControls(page, { prompt: "Once upon a time", temperature: 0, topp: 0.9, seed: "", maxTokens: 256 });
	const r = await L.generate(page);
	assert.equal(r.output + "\n", greedy);
	assert.deepEqual(errors, []);
});
