// mote.js: the JavaScript API of mote-js.wasm (globalThis.mote).
//
// Load it after Go's wasm_exec.js (which defines globalThis.Go): as a classic
// script (importScripts in a Web Worker, a <script> tag), as a side-effect
// ES module import (workerd: import "./wasm_exec.js"; import "./mote.js"),
// or with require() in Node. Then:
//
//   await mote.init(wasm)   // a WebAssembly.Module, the bytes, or a Response
//   mote.load(name, bytes[, tokenizerBytes]) -> info
//   const id = mote.start(name, prompt, {temperature, topp, seed, steps})
//   for (let r = mote.next(id); !r.done; r = mote.next(id)) out += r.text
//   mote.stop(id)           // only to end early; an ended session frees itself
//
// Every call is synchronous and throws an Error (with a .code) on failure.
// Call init lazily, inside a request, in workerd: Go reads the clock and
// crypto.getRandomValues at start, which workerd forbids at global scope.
// The Go side is wasm/js/main.go; it says why this wrapper exists.
"use strict";
(() => {
	const names = ["version", "load", "unload", "models", "start", "next", "stop", "session"];
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

	const mote = {
		// init starts mote-js.wasm and returns its version string.
		async init(wasm) {
			if (typeof globalThis.Go !== "function") {
				throw new Error("mote: load wasm_exec.js before mote.js");
			}
			const g = new globalThis.Go();
			let instance;
			if (wasm instanceof WebAssembly.Module) {
				instance = await WebAssembly.instantiate(wasm, g.importObject);
			} else if (typeof Response !== "undefined" && (wasm instanceof Response || wasm instanceof Promise)) {
				instance = (await WebAssembly.instantiateStreaming(wasm, g.importObject)).instance;
			} else {
				instance = (await WebAssembly.instantiate(wasm, g.importObject)).instance;
			}
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
