// page.js: boots mote's web page (a classic script, after wasm_exec.js and
// mote.js). It compiles mote.wasm once, hands the compiled module to the Web
// Worker (worker.js, which runs the engine) and starts the same module on
// this thread, where it runs the Vugu UI (web/ui). It defines
// globalThis.motePage, the UI's link to the worker:
//
//   motePage.send(msg)   posts msg to the worker
//   motePage.listen(fn)  fn(msg) for every message from the worker, and for
//                        the page's own: {type: "catalog", models, encoders}
//                        (from models.json) and {type: "files", files} (a drop)
//   motePage.last        the latest message of each type, by type (tests and
//                        benchmarks read the vectors of "embedded" there)
//
// Messages sent before listen() are kept and delivered in order.
"use strict";
(() => {
	const queue = [];
	let listener = null;
	let worker = null;
	const early = []; // messages sent before the worker exists

	const last = {};

	function deliver(msg) {
		last[msg.type] = msg;
		if (listener) {
			listener(msg);
		} else {
			queue.push(msg);
		}
	}

	globalThis.motePage = {
		last,
		send(msg) {
			if (worker) {
				worker.postMessage(msg);
			} else {
				early.push(msg);
			}
		},
		listen(fn) {
			listener = fn;
			for (const m of queue.splice(0)) {
				fn(m);
			}
		},
	};

	// fail shows a boot failure where the UI would be (the UI may not exist).
	function fail(what, err) {
		console.error("mote:", what, err);
		const box = document.getElementById("boot");
		if (box) {
			box.textContent = `mote could not start: ${what}: ${err && err.message ? err.message : err}`;
			box.className = "boot-error";
		}
		deliver({ type: "fatal", message: `The page could not start: ${what}: ${err && err.message ? err.message : err}` });
	}

	// compile fetches and compiles a wasm file, streaming when the server
	// sends application/wasm (any static server may not).
	async function compile(url) {
		const r = await fetch(url);
		if (!r.ok) {
			throw new Error(`${url}: HTTP ${r.status}`);
		}
		if ((r.headers.get("content-type") || "").startsWith("application/wasm")) {
			return WebAssembly.compileStreaming(r);
		}
		return WebAssembly.compile(await r.arrayBuffer());
	}

	async function catalog() {
		const r = await fetch("models.json");
		if (!r.ok) {
			throw new Error(`models.json: HTTP ${r.status}`);
		}
		const j = await r.json();
		return { models: j.models, encoders: j.encoders || [] };
	}

	// Drops anywhere on the page load the dropped files (the drop zone is a
	// hint; a missed drop must not navigate away from the page).
	function wireDrops() {
		const zone = () => document.getElementById("drop");
		document.addEventListener("dragover", (e) => {
			e.preventDefault();
			zone()?.classList.add("over");
		});
		document.addEventListener("dragleave", () => zone()?.classList.remove("over"));
		document.addEventListener("drop", (e) => {
			e.preventDefault();
			zone()?.classList.remove("over");
			if (e.dataTransfer && e.dataTransfer.files.length > 0) {
				deliver({ type: "files", files: e.dataTransfer.files });
			}
		});
	}

	async function boot() {
		wireDrops();
		const models = catalog().catch((err) => {
			fail("reading models.json", err);
			return { models: [], encoders: [] };
		});
		let app;
		let kernels;
		try {
			[app, kernels] = await Promise.all([compile("mote.wasm"), compile("kernels.wasm")]);
		} catch (err) {
			fail("loading mote.wasm", err);
			return;
		}
		worker = new Worker("worker.js");
		worker.onmessage = (e) => deliver(e.data);
		worker.onerror = (e) => {
			e.preventDefault();
			deliver({ type: "fatal", message: `The page's worker failed: ${e.message || "unknown error"}. Reload the page.` });
		};
		worker.postMessage({ type: "init", app, kernels });
		for (const m of early.splice(0)) {
			worker.postMessage(m);
		}
		try {
			await mote.init(app, { kernels }); // starts the UI (wasm/js/web_ui.go)
		} catch (err) {
			fail("starting mote.wasm", err);
			return;
		}
		document.getElementById("boot")?.remove();
		deliver({ type: "catalog", ...(await models) });
	}

	boot();
})();
