// Node driver for wasmtest's js tests: runs mote-js.wasm through the
// JavaScript API of mote.js and prints one JSON object on stdout.
//
// usage: node driver.js WASM_EXEC_JS MOTE_JS MOTE_JS_WASM MODEL TOKENIZER [KERNELS] < job.json
// With KERNELS (wasm/simd/kernels.wasm), MOTE_JS_WASM is a -tags mote_simd
// build: init is tried without the kernels first (it must throw), then with.
// job: {"cases": [{"prompt": "...", "opts": {...}}, ...],
//       "mote": path of a .mote file, "moteCase": {"prompt", "opts"},
//       "bench": {"prompt", "opts"} (then only the benchmark runs)}
"use strict";
const fs = require("fs");
const [wasmExec, moteJs, wasmPath, modelPath, tokPath, kernelsPath] = process.argv.slice(2);

// As Go's wasm_exec_node.js does: real fs, so that Go's stderr reaches ours.
globalThis.fs = fs;
globalThis.path = require("path");
require(wasmExec);
require(moteJs);

// caught runs f and describes what it throws (null when it does not).
function caught(f) {
	try {
		f();
		return null;
	} catch (e) {
		return { isError: e instanceof Error, message: String(e.message), code: e.code ?? null };
	}
}

// generate drains a session; next() results are checked for their shape.
function generate(id) {
	let text = "";
	let tokens = 0;
	for (;;) {
		const r = mote.next(id);
		if (typeof r.token !== "number" || typeof r.text !== "string" || typeof r.done !== "boolean" || typeof r.reason !== "string") {
			throw new Error("next() returned a malformed result: " + JSON.stringify(r));
		}
		if (r.done) {
			return { text, tokens, reason: r.reason, last: r };
		}
		text += r.text;
		tokens++;
	}
}

async function main() {
	const job = JSON.parse(fs.readFileSync(0, "utf8"));
	const out = {};
	out.beforeInit = caught(() => mote.next(1));
	const wasm = fs.readFileSync(wasmPath);
	if (kernelsPath) {
		try {
			await mote.init(wasm);
			out.initWithoutKernels = null;
		} catch (e) {
			out.initWithoutKernels = { isError: e instanceof Error, message: String(e.message), code: null };
		}
		out.version = await mote.init(wasm, { kernels: fs.readFileSync(kernelsPath) });
	} else {
		out.version = await mote.init(wasm);
	}

	const model = fs.readFileSync(modelPath);
	const tok = fs.readFileSync(tokPath);
	out.info = mote.load("s", model, tok);
	if (job.bench) {
		const id = mote.start("s", job.bench.prompt, job.bench.opts);
		const t0 = performance.now();
		const r = generate(id);
		out.bench = { tokens: r.tokens, ms: performance.now() - t0 };
		process.stdout.write(JSON.stringify(out));
		return;
	}

	// sequential runs
	out.texts = job.cases.map((c) => {
		const id = mote.start("s", c.prompt, c.opts);
		const s = mote.session(id);
		const r = generate(id);
		return { text: r.text, tokens: r.tokens, reason: r.reason, session: s, stopAfter: mote.stop(id) };
	});

	// the same runs interleaved token by token
	const ids = job.cases.map((c) => mote.start("s", c.prompt, c.opts));
	const texts = ids.map(() => "");
	for (let live = ids.length; live > 0; ) {
		live = 0;
		ids.forEach((id, i) => {
			if (id === null) return;
			const r = mote.next(id);
			if (r.done) {
				ids[i] = null;
				return;
			}
			texts[i] += r.text;
			live++;
		});
	}
	out.interleaved = texts;

	// other byte sources: a view into a larger buffer, an ArrayBuffer, a DataView
	const big = new Uint8Array(model.length + 7);
	big.set(model, 3);
	const tokBuf = tok.buffer.slice(tok.byteOffset, tok.byteOffset + tok.length);
	out.viewInfo = mote.load("view", big.subarray(3, 3 + model.length), new DataView(tokBuf));
	out.bufferInfo = mote.load("buffer", model.buffer.slice(model.byteOffset, model.byteOffset + model.length), tokBuf);
	out.models = mote.models().map((m) => m.name);
	mote.unload("view");
	mote.unload("buffer");

	// a .mote container, which carries its tokenizer
	if (job.mote) {
		const info = mote.load("container", fs.readFileSync(job.mote));
		const id = mote.start("container", job.moteCase.prompt, job.moteCase.opts);
		out.mote = { info, text: generate(id).text };
		mote.unload("container");
	}

	// stop in the middle
	const sid = mote.start("s", "Once upon a time", { temperature: 0 });
	mote.next(sid);
	out.stopRunning = mote.stop(sid);
	out.nextAfterStop = caught(() => mote.next(sid));

	out.errors = {
		badModel: caught(() => mote.load("junk", new TextEncoder().encode("GGUF and then nothing useful"))),
		noTokenizer: caught(() => mote.load("notok", model)),
		exists: caught(() => mote.load("s", model, tok)),
		notBytes: caught(() => mote.load("x", "not bytes")),
		noModel: caught(() => mote.start("nope", "hi")),
		badOption: caught(() => mote.start("s", "hi", { temp: 0 })),
		badTopp: caught(() => mote.start("s", "hi", { topp: 2 })),
		badSeed: caught(() => mote.start("s", "hi", { seed: 1.5 })),
		noSession: caught(() => mote.next(999999)),
		badID: caught(() => mote.next("1")),
	};
	out.stopUnknown = mote.stop(999999);
	process.stdout.write(JSON.stringify(out));
}

main().then(
	() => process.exit(0),
	(e) => {
		console.error((e && e.stack) || e);
		process.exit(1);
	},
);
