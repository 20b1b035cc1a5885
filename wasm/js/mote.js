// mote.js: the JavaScript API of mote-js.wasm (globalThis.mote).
//
// Load it after Go's wasm_exec.js (which defines globalThis.Go): as a classic
// script (importScripts in a Web Worker, a <script> tag), as a side-effect
// ES module import (workerd: import "./wasm_exec.js"; import "./mote.js"),
// or with require() in Node. Then:
//
//   await mote.init(wasm)   // a WebAssembly.Module, the bytes, or a Response
//   await mote.init(wasm, {kernels})  // a build with -tags mote_simd: kernels
//                           // is wasm/simd/kernels.wasm (same kinds as wasm)
//   mote.load(name, bytes[, tokenizerBytes]) -> info
//   const id = mote.start(name, prompt, {temperature, topp, seed, steps})
//   for (let r = mote.next(id); !r.done; r = mote.next(id)) out += r.text
//   mote.stop(id)           // only to end early; an ended session frees itself
//   mote.random(name, "15M", "q8", 32, seed, tokenizerBytes) -> info
//                           // random weights of a known shape, for benchmarks
//   mote.loadEncoder(name, bytes) -> info   // a sentence encoder (docs/EMBED.md)
//   mote.embed(name, textOrArray[, {truncate, literal}])
//                           // -> {embeddings: [Float32Array], tokens: [n], ...}
//   mote.embedBench(name, text, runs) -> {per_second, ms_per_token, ...}
//   mote.benchTexts() -> {sentence, paragraph}  // docs/EMBED.md's benchmark texts
//
// Every call is synchronous and throws an Error (with a .code) on failure.
// Call init lazily, inside a request, in workerd: Go reads the clock and
// crypto.getRandomValues at start, which workerd forbids at global scope.
// The Go side is wasm/js/main.go; it says why this wrapper exists.
"use strict";
(() => {
	const names = ["version", "load", "unload", "models", "start", "next", "stop", "session", "random",
		"loadEncoder", "unloadEncoder", "encoders", "embed", "embedBench", "benchTexts"];
	let go = null;

	function call(name, args) {
		const raw = globalThis.moteGo;
		if (go === null || !raw) {
			throw new Error("mote: not started; await mote.init(wasm) first");
		}
		if (go.exited) {
			throw new Error("mote: the Go program has exited; call mote.init again");
		}
		const r = raw[name](...args);
		if (r instanceof Error) {
			throw r;
		}
		return r;
	}

	// compile turns a WebAssembly.Module, bytes, a Response or a Promise of
	// one into a WebAssembly.Module.
	async function compile(wasm) {
		if (wasm instanceof WebAssembly.Module) {
			return wasm;
		}
		if (typeof Response !== "undefined" && (wasm instanceof Response || wasm instanceof Promise)) {
			return WebAssembly.compileStreaming(wasm);
		}
		return WebAssembly.compile(wasm);
	}

	// simdImports wires the SIMD kernel module (wasm/simd/kernels.wasm) for a
	// Go module built with -tags mote_simd, which imports the kernels as
	// module "mote_simd" while the kernels import Go's memory: the cycle is
	// broken by trampolines that call into the kernel instance once it exists
	// (see wasm/simd/doc.go). It returns the function that instantiates the
	// kernels against the Go instance; call it before go.run.
	function simdImports(goModule, importObject, kernels) {
		const names = WebAssembly.Module.imports(goModule)
			.filter((i) => i.module === "mote_simd" && i.kind === "function")
			.map((i) => i.name);
		if (names.length === 0) {
			return async () => {}; // a build without the kernels: nothing to wire
		}
		if (!kernels) {
			throw new Error("mote: this wasm was built with -tags mote_simd; pass its kernels: mote.init(wasm, {kernels})");
		}
		let k = null;
		const tramp = {};
		for (const n of names) {
			tramp[n] = (...a) => k[n](...a);
		}
		importObject.mote_simd = tramp;
		return async (instance) => {
			const kmod = await compile(kernels);
			const kinst = await WebAssembly.instantiate(kmod, { env: { memory: instance.exports.mem } });
			for (const n of names) {
				if (typeof kinst.exports[n] !== "function") {
					throw new Error(`mote: the kernel module exports no ${n} (is it wasm/simd/kernels.wasm?)`);
				}
			}
			k = kinst.exports;
		};
	}

	const mote = {
		// init starts mote-js.wasm and returns its version string. opts.kernels
		// is the SIMD kernel module, needed by builds with -tags mote_simd.
		async init(wasm, opts) {
			if (typeof globalThis.Go !== "function") {
				throw new Error("mote: load wasm_exec.js before mote.js");
			}
			const g = new globalThis.Go();
			const module = await compile(wasm);
			const wireKernels = simdImports(module, g.importObject, opts && opts.kernels);
			const instance = await WebAssembly.instantiate(module, g.importObject);
			await wireKernels(instance);
			globalThis.moteGo = undefined;
			// run executes Go's main until it blocks, having registered moteGo;
			// its promise settles only when the Go program exits.
			g.run(instance).catch((err) => console.error("mote: the Go program failed:", err));
			if (!globalThis.moteGo) {
				throw new Error("mote: the wasm module registered no functions (is it mote-js.wasm?)");
			}
			go = g;
			return call("version", []);
		},
	};
	for (const name of names) {
		mote[name] = (...args) => call(name, args);
	}
	globalThis.mote = mote;
})();
