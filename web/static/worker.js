// worker.js: mote's Web Worker. It runs the engine (mote.wasm through
// mote.js, with the SIMD kernels), fetches and caches models, and streams
// tokens to the page. It only marshals: the model logic is Go (engine).
//
// Page -> worker:
//   {type: "init", app, kernels}          compiled WebAssembly.Modules
//   {type: "load", label, url, tokenizer?, size?}   a model by URL
//   {type: "load", files}                 a FileList: a model, or a model and its tokenizer
//   {type: "load", random: {shape, dtype, groupSize, seed}, tokenizer}
//                                         random weights of a known shape (the benchmarks)
//   {type: "generate", prompt, opts}      opts: mote.start's {temperature, topp, seed, steps}
//   {type: "stop"}                        ends the generation within one token
//   {type: "clear-cache"}
//   {type: "load-encoder", label, url, size?}   a sentence encoder by URL (docs/EMBED.md)
//   {type: "embed", kind: "matrix"|"search", texts}
//                                         matrix: cosines of every pair; search:
//                                         texts[0] is the query, the rest the list
//   {type: "embed-bench", which: "sentence"|"paragraph", runs}
//                                         mote.embedBench on engine's benchmark texts
// Worker -> page:
//   {type: "ready", message: version, entries}
//   {type: "progress", phase: "download"|"decompress"|"read", loaded, total}
//   {type: "loaded", info, cached, ms, entries}     info: mote.load's, plus label
//   {type: "load-error", message, code}
//   {type: "tokens", text, tokens, ms}    text since the last message; ms since the first token
//   {type: "done", reason, tokens, ms, ttft, seed}
//   {type: "gen-error", message}
//   {type: "cache", entries, message}
//   {type: "fatal", message}
//   {type: "encoder-progress", phase, loaded, total}
//   {type: "encoder-loaded", info, cached, ms, entries}   info: mote.loadEncoder's, plus label
//   {type: "encoder-error", message}
//   {type: "embed-progress", loaded, total}   texts embedded so far
//   {type: "embedded", kind, counts, cosines, embeddings, ms}
//                                         counts: tokens per text; cosines: (n, n) for
//                                         matrix, (1, n-1) for search; embeddings:
//                                         Float32Arrays (unit length), one per text
//   {type: "embed-error", message}
//   {type: "embed-bench-result", which, text, tokens, runs, seconds, per_second, ms_per_token}
//                                         or {type: "embed-bench-result", which, error}
//
// One thing runs at a time (messages queue), except stop, which is seen
// between tokens: the loop yields to the event loop after every token, so
// no SharedArrayBuffer (and no COOP/COEP header) is needed.
"use strict";
importScripts("wasm_exec.js", "mote.js");

// MAX_MODEL_BYTES bounds a model file: the bytes are copied into Go's
// memory and read into weights there (about twice the file in a wasm32
// memory of at most 4 GiB), so larger files are refused before download.
const MAX_MODEL_BYTES = 1 << 30;
const CACHE = "mote-models-v1";
// Batch tokens into one message per 50 ms (20 updates a second): the UI
// renders the whole output per message, on the page's thread, and on a
// two-core machine that rendering competes with the model for the CPU.
// Measured on the 15M shape in headless Chromium (./build.sh bench, one
// session): q8 347 tok/s at 16 ms (a message per frame), 454 at 50 ms, 430
// at 100 ms; q4 328, 428, 455. A Worker doing nothing else gives ~480.
const POST_EVERY_MS = 50;

let boot = null; // the init message
let started = null; // Promise of mote.init
let current = null; // {name, source, label} of the model in use
let encoder = null; // {name, source, label} of the sentence encoder, once loaded
let loads = 0;
let stopRequested = false;
const queue = [];
let busy = false;

const post = (m) => self.postMessage(m);

// PlainError carries a message meant for people (shown as is in #error).
class PlainError extends Error {}

self.onmessage = (e) => {
	const m = e.data;
	if (m.type === "init") {
		boot = m;
		started = start().then(
			async (version) => post({ type: "ready", message: version, entries: await cacheEntries() }),
			(err) => post({ type: "fatal", message: `The engine could not start: ${err.message}` }),
		);
		return;
	}
	if (m.type === "stop") {
		stopRequested = true;
		return;
	}
	queue.push(m);
	pump();
};

async function pump() {
	if (busy) {
		return;
	}
	busy = true;
	while (queue.length > 0) {
		const m = queue.shift();
		try {
			if (m.type === "load") {
				await load(m);
			} else if (m.type === "generate") {
				await generate(m);
			} else if (m.type === "clear-cache") {
				await clearCache();
			} else if (m.type === "load-encoder") {
				await loadEncoder(m);
			} else if (m.type === "embed") {
				await embed(m);
			} else if (m.type === "embed-bench") {
				await embedBench(m);
			}
		} catch (err) {
			console.error("mote worker:", err);
			post({ type: "fatal", message: `Unexpected error: ${err.message}` });
		}
	}
	busy = false;
}

function start() {
	return mote.init(boot.app, { kernels: boot.kernels });
}

// alive reports whether the Go program still runs; a Go panic or an
// out-of-memory ends it, and mote.js then throws on every call.
function alive() {
	try {
		mote.version();
		return true;
	} catch {
		return false;
	}
}

// restart starts a fresh Go instance and reloads the model in use from its
// source (the cache, or the same File), so the page keeps working.
async function restart() {
	await start();
	const prev = current;
	current = null;
	if (prev && prev.source) {
		const { bytes, tok } = await fetchSource(prev.source, () => {});
		const name = "m" + ++loads;
		mote.load(name, bytes, tok);
		current = { ...prev, name };
	}
	const enc = encoder;
	encoder = null;
	if (enc) {
		const { bytes } = await fetchSource(enc.source, () => {});
		const name = "e" + ++loads;
		mote.loadEncoder(name, bytes);
		encoder = { ...enc, name };
	}
}

const mb = (n) => (n / 1e6).toFixed(1) + " MB";

function tooLarge(what, n) {
	return new PlainError(`${what} is ${mb(n)}, more than this page can hold in memory (${mb(MAX_MODEL_BYTES)}).`);
}

async function load(m) {
	if (m.random) {
		return loadRandom(m);
	}
	const t0 = performance.now();
	const source = m.files ? { files: Array.from(m.files) } : { url: m.url, tokenizer: m.tokenizer || "" };
	const label = m.files ? source.files.map((f) => f.name).sort((a, b) => a.localeCompare(b)).join(" + ") : m.label || m.url;
	let got;
	try {
		if (source.files) {
			if (source.files.length === 0 || source.files.length > 2) {
				throw new PlainError(`choose one model file, or a model and its tokenizer; got ${source.files.length} files.`);
			}
		} else {
			new URL(source.url, self.location.href); // throws on a malformed URL
		}
		got = await fetchSource(source, (p) => post({ type: "progress", ...p }));
	} catch (err) {
		post({ type: "load-error", message: plain(err), code: "fetch" });
		return;
	}
	await started;
	post({ type: "progress", phase: "read", loaded: 1, total: 1 });
	const name = "m" + ++loads;
	let info;
	try {
		info = mote.load(name, got.bytes, got.tok);
	} catch (err) {
		let message = plain(err);
		if (!alive()) {
			message = `the engine ran out of memory reading it (${mb(got.bytes.length)}).`;
			try {
				await restart();
			} catch (e2) {
				post({ type: "fatal", message: `The engine could not restart: ${e2.message}. Reload the page.` });
				return;
			}
		}
		post({ type: "load-error", message, code: err.code || "" });
		return;
	}
	if (current) {
		mote.unload(current.name);
	}
	current = { name, source, label };
	if (got.fresh) {
		await cachePut(got.fresh);
	}
	info.label = label;
	post({ type: "loaded", info, cached: got.cached, ms: performance.now() - t0, entries: await cacheEntries() });
}

// loadRandom makes a model of a known shape with random weights in the
// engine (mote.random): the benchmarks measure speed on shapes for which no
// trained model is at hand. It is not offered in the UI.
async function loadRandom(m) {
	const t0 = performance.now();
	const { shape, dtype, groupSize, seed } = m.random;
	const label = `random ${shape} ${dtype}`;
	try {
		const tok = (await fetchURL(m.tokenizer, () => {}, [])).bytes;
		await started;
		post({ type: "progress", phase: "read", loaded: 1, total: 1 });
		const name = "m" + ++loads;
		const info = mote.random(name, shape, dtype, groupSize, seed, tok);
		if (current) {
			mote.unload(current.name);
		}
		current = { name, source: null, label };
		info.label = label;
		post({ type: "loaded", info, cached: false, ms: performance.now() - t0, entries: await cacheEntries() });
	} catch (err) {
		post({ type: "load-error", message: plain(err), code: err.code || "" });
	}
}

// fetchSource returns {bytes, tok, cached, fresh} for a source: files are
// read (the larger one is the model, the smaller its tokenizer); URLs come
// from the Cache API when cached, else from the network (fresh lists what
// to cache once the model has loaded).
async function fetchSource(source, progress) {
	if (source.files) {
		const fs = [...source.files].sort((a, b) => b.size - a.size);
		for (const f of fs) {
			if (f.size > MAX_MODEL_BYTES) {
				throw tooLarge(f.name, f.size);
			}
		}
		progress({ phase: "download", loaded: 0, total: fs[0].size });
		const bytes = new Uint8Array(await fs[0].arrayBuffer());
		const tok = fs.length > 1 ? new Uint8Array(await fs[1].arrayBuffer()) : null;
		progress({ phase: "download", loaded: fs[0].size, total: fs[0].size });
		return { bytes, tok, cached: false, fresh: null };
	}
	const fresh = [];
	const model = await fetchURL(source.url, progress, fresh);
	const tok = source.tokenizer ? (await fetchURL(source.tokenizer, () => {}, fresh)).bytes : null;
	return { bytes: model.bytes, tok, cached: model.cached, fresh };
}

async function openCache() {
	if (!self.caches) {
		return null; // not a secure context (plain http on a public host): no cache
	}
	try {
		return await caches.open(CACHE);
	} catch {
		return null;
	}
}

async function fetchURL(url, progress, fresh) {
	const abs = new URL(url, self.location.href).href;
	const cache = await openCache();
	if (cache) {
		const hit = await cache.match(abs);
		if (hit) {
			const bytes = new Uint8Array(await hit.arrayBuffer());
			progress({ phase: "download", loaded: bytes.length, total: bytes.length });
			return { bytes, cached: true };
		}
	}
	let r;
	try {
		r = await fetch(abs);
	} catch (err) {
		throw new PlainError(`the download of ${url} failed (${err.message}).`);
	}
	if (!r.ok) {
		throw new PlainError(`the download of ${url} failed: the server answered ${r.status} ${r.statusText}.`.replace(" .", "."));
	}
	const total = Number(r.headers.get("content-length")) || 0;
	const gz = /\.gz$/i.test(new URL(abs).pathname);
	if (!gz && total > MAX_MODEL_BYTES) {
		r.body?.cancel();
		throw tooLarge(url, total);
	}
	// Count the bytes as they arrive (compressed ones for .gz, whose progress
	// covers download and decompression together).
	let loaded = 0;
	const phase = gz ? "decompress" : "download";
	progress({ phase, loaded, total });
	let body = r.body.pipeThrough(
		new TransformStream({
			transform(chunk, ctl) {
				loaded += chunk.length;
				progress({ phase, loaded, total });
				ctl.enqueue(chunk);
			},
		}),
	);
	if (gz) {
		body = body.pipeThrough(new DecompressionStream("gzip"));
	}
	const chunks = [];
	let n = 0;
	const reader = body.getReader();
	try {
		for (;;) {
			const { done, value } = await reader.read();
			if (done) {
				break;
			}
			n += value.length;
			if (n > MAX_MODEL_BYTES) {
				reader.cancel();
				throw tooLarge(url, n);
			}
			chunks.push(value);
		}
	} catch (err) {
		if (err instanceof PlainError) {
			throw err;
		}
		throw new PlainError(`the download of ${url} failed (${err.message}).`);
	}
	const bytes = new Uint8Array(n);
	let off = 0;
	for (const c of chunks) {
		bytes.set(c, off);
		off += c.length;
	}
	progress({ phase, loaded: total || loaded, total: total || loaded });
	fresh.push({ url: abs, bytes });
	return { bytes, cached: false };
}

async function cachePut(items) {
	const cache = await openCache();
	if (!cache) {
		return;
	}
	for (const { url, bytes } of items) {
		try {
			await cache.put(url, new Response(bytes, { headers: { "content-type": "application/octet-stream" } }));
		} catch (err) {
			console.warn("mote worker: not cached:", url, err); // quota: the page still works
		}
	}
}

async function cacheEntries() {
	const cache = await openCache();
	return cache ? (await cache.keys()).length : -1;
}

async function clearCache() {
	const ok = self.caches ? await caches.delete(CACHE) : false;
	post({ type: "cache", entries: await cacheEntries(), message: ok ? "cache cleared" : "nothing cached" });
}

// yieldNow lets the event loop run (and a stop message arrive). A
// MessageChannel round trip, not setTimeout, which browsers clamp to 4 ms.
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()();
function yieldNow() {
	return new Promise((resolve) => {
		waiting.push(resolve);
		channel.port2.postMessage(0);
	});
}

async function generate(m) {
	await started;
	if (!current) {
		post({ type: "gen-error", message: "no model is loaded." });
		return;
	}
	stopRequested = false;
	const t0 = performance.now();
	let id;
	try {
		id = mote.start(current.name, m.prompt, m.opts);
	} catch (err) {
		post({ type: "gen-error", message: plain(err) });
		return;
	}
	const seed = mote.session(id).seed;
	let text = "";
	let tokens = 0;
	let first = 0;
	let last = 0;
	let reason = "";
	try {
		for (;;) {
			const r = mote.next(id);
			if (r.done) {
				reason = r.reason;
				break;
			}
			const now = performance.now();
			tokens++;
			text += r.text;
			if (tokens === 1) {
				first = now;
			}
			if (tokens === 1 || now - last >= POST_EVERY_MS) {
				post({ type: "tokens", text, tokens, ms: now - first });
				text = "";
				last = now;
				// the event loop runs (and a stop message arrives) once per
				// message, not per token: a fast model's tokens come in well
				// under a millisecond, and a round trip costs a good part of one
				await yieldNow();
				if (stopRequested) {
					mote.stop(id);
					reason = "stopped";
					break;
				}
			}
		}
	} catch (err) {
		const message = plain(err);
		if (!alive()) {
			await restart().catch(() => {});
		}
		post({ type: "gen-error", message });
		return;
	}
	const end = performance.now();
	post({ type: "tokens", text, tokens, ms: end - first });
	post({ type: "done", reason, tokens, ms: end - first, ttft: first - t0, seed });
}

// plain turns an error into a sentence for #error.
function plain(err) {
	if (err instanceof PlainError) {
		return err.message;
	}
	switch (err.code) {
		case "bad_model":
			return `it is not a model file mote can read (${err.message}).`;
		case "no_tokenizer":
			return "the file carries no tokenizer: choose the model and its tokenizer .bin together (two files).";
		case "limit":
			return `it is too large for this page: ${err.message}.`;
		case "bad_input":
			return err.message + ".";
	}
	return err.message;
}

// ---- sentence embeddings (the page's embeddings view; docs/EMBED.md) ----

async function loadEncoder(m) {
	const t0 = performance.now();
	const source = { url: m.url, tokenizer: "" };
	let got;
	try {
		new URL(source.url, self.location.href);
		got = await fetchSource(source, (p) => post({ type: "encoder-progress", ...p }));
	} catch (err) {
		post({ type: "encoder-error", message: plain(err) });
		return;
	}
	await started;
	post({ type: "encoder-progress", phase: "read", loaded: 1, total: 1 });
	const name = "e" + ++loads;
	let info;
	try {
		info = mote.loadEncoder(name, got.bytes);
	} catch (err) {
		let message = plain(err);
		if (!alive()) {
			message = `the engine ran out of memory reading it (${mb(got.bytes.length)}).`;
			await restart().catch(() => {});
		}
		post({ type: "encoder-error", message });
		return;
	}
	if (encoder) {
		mote.unloadEncoder(encoder.name);
	}
	encoder = { name, source, label: m.label || m.url };
	if (got.fresh) {
		await cachePut(got.fresh);
	}
	info.label = encoder.label;
	post({ type: "encoder-loaded", info, cached: got.cached, ms: performance.now() - t0, entries: await cacheEntries() });
}

// embed embeds the texts one call each (the same vectors as one call for
// all: every text is encoded on its own), posting progress between them,
// and takes the cosines: dot products of unit vectors, summed in float64.
async function embed(m) {
	await started;
	if (!encoder) {
		post({ type: "embed-error", message: "No sentence encoder is loaded." });
		return;
	}
	const texts = m.texts;
	const t0 = performance.now();
	const embeddings = [];
	const counts = [];
	let last = 0;
	for (let i = 0; i < texts.length; i++) {
		let r;
		try {
			r = mote.embed(encoder.name, texts[i]);
		} catch (err) {
			const what = m.kind === "search" ? (i === 0 ? "The query" : `Line ${i} of the list`) : `Line ${i + 1}`;
			let message = `${what}: ${plain(err)}`;
			const long = /(\d+) tokens, more than the model's context of (\d+)/.exec(err.message);
			if (long) {
				message = `${what} is too long for the encoder: ${long[1]} tokens, more than its ${long[2]} (about 350 words); shorten it or split it.`;
			}
			if (!alive()) {
				message = `The engine failed while embedding: ${err.message}`;
				await restart().catch(() => {});
			}
			post({ type: "embed-error", message });
			return;
		}
		embeddings.push(r.embeddings[0]);
		counts.push(r.tokens[0]);
		const now = performance.now();
		if (now - last >= POST_EVERY_MS || i === texts.length - 1) {
			post({ type: "embed-progress", loaded: i + 1, total: texts.length });
			last = now;
			await yieldNow();
		}
	}
	const cos = (a, b) => {
		let s = 0;
		for (let k = 0; k < a.length; k++) {
			s += a[k] * b[k];
		}
		return s;
	};
	let cosines;
	if (m.kind === "search") {
		cosines = [embeddings.slice(1).map((v) => cos(embeddings[0], v))];
	} else {
		cosines = embeddings.map((a) => embeddings.map((b) => cos(a, b)));
	}
	post({ type: "embedded", kind: m.kind, counts, cosines, embeddings, ms: performance.now() - t0 });
}

// embedBench runs mote.embedBench (engine.BenchEmbed: a warm-up, then runs
// timed embeddings of one text) on the 12-token sentence or the 128-token
// paragraph of docs/EMBED.md's speed table.
async function embedBench(m) {
	await started;
	try {
		if (!encoder) {
			throw new PlainError("no sentence encoder is loaded.");
		}
		const text = mote.benchTexts()[m.which];
		if (typeof text !== "string") {
			throw new PlainError(`unknown benchmark text ${m.which}.`);
		}
		const r = mote.embedBench(encoder.name, text, m.runs);
		post({ type: "embed-bench-result", which: m.which, text, ...r });
	} catch (err) {
		post({ type: "embed-bench-result", which: m.which, error: plain(err) });
	}
}
