// worker.mjs: mote's Cloudflare Worker glue (copied to dist/edge by build.sh).
//
// One Go instance (app.wasm, built from edge/worker) per isolate, started on
// the first request and kept: the model loads once and stays resident.
// Why the first request and not module scope: workerd forbids
// crypto.getRandomValues and timers at global scope, and Date.now() reads 0
// there, which Go's runtime cannot start with (shared/design/TOOLCHAIN.md).
//
// Go's main (via syumai/workers' ServeNonBlock + Ready) registers
// handleRequest on the runtime context object, then blocks; every request
// calls it with the same context object, whose env and ctx are updated first.
// Responses stream pull-based: workerd's pull() on the body calls into Go,
// which produces the next token inside that call (edge/doc.go says why).
//
// SIMD: when the build ships kernels.wasm (manifest.mjs), it is instantiated
// on Go's own memory and wired in through trampolines, as in the browser:
// Go imports "mote_simd" functions, which forward to the kernel instance made
// right after Go's instance and before Go's main runs.
//
// The model comes from the bundle (a Data module), from static assets (a
// manifest and parts of at most 25 MiB, streamed into Go part by part) or
// from an R2 bucket, as MOTE_MODEL_SOURCE says (docs/EDGE.md).
//
// The sentence encoder of POST /v1/embeddings (larger than the upload may
// be) comes from static assets (MOTE_ENCODER_PATH, a manifest like the
// model's). It loads on the first embeddings request, not before: an
// isolate that only completes text never spends the encoder's ~50 MB of
// loading (file and model) on it. Then it stays resident like the model.
import "./wasm_exec.js";
import { app, kernels, bundled } from "./manifest.mjs";

const retryLoadMs = 5000;

// The runtime context syumai/workers reads (as globalThis.context): one
// object for the isolate's life.
const context = { env: undefined, ctx: undefined, binding: {}, instances: 0 };
globalThis.context = context;

let current = null; // {binding, exited, waiters, loaded, loading, lastTry}
let starting = null;

// start instantiates app.wasm and runs Go's main until it is ready.
async function start() {
	const go = new Go();
	let ready;
	const isReady = new Promise((resolve) => (ready = resolve));
	const imports = { ...go.importObject, workers: { ready: () => ready() } };
	let kernel = null;
	if (kernels) {
		// one trampoline per function Go imports from "mote_simd"
		imports.mote_simd = {};
		for (const imp of WebAssembly.Module.imports(app)) {
			if (imp.module === "mote_simd" && imp.kind === "function") {
				const name = imp.name;
				imports.mote_simd[name] = (...args) => kernel.exports[name](...args);
			}
		}
	}
	const instance = new WebAssembly.Instance(app, imports);
	if (kernels) {
		kernel = new WebAssembly.Instance(kernels, { env: { memory: instance.exports.mem } });
	}
	context.binding = {};
	context.instances++;
	context.memory = instance.exports.mem; // for /healthz (wasm_memory_bytes)
	const state = {
		binding: context.binding, exited: false, waiters: new Set(), loaded: false, loading: null, lastTry: 0,
		encoder: { loaded: false, loading: null, lastTry: 0 },
	};
	// go.exit is wasm_exec.js's hook, called synchronously inside the call
	// during which the program ended (a continuation of go.run's promise
	// would belong to the first request's context, which workerd cancels).
	go.exit = (code) => exited(state, code);
	go.run(instance).catch((err) => exited(state, err));
	if (go.exited) {
		throw new Error("mote: the Go program exited while starting");
	}
	await isReady;
	return state;
}

function exited(state, why) {
	if (state.exited) {
		return;
	}
	state.exited = true;
	if (current === state) {
		current = null;
	}
	console.error("mote: the Go program exited (" + why + "); the next request starts a new one");
	for (const wake of state.waiters) {
		wake();
	}
}

// call runs a synchronous Go function and throws the Error it returns.
function call(state, name, ...args) {
	const r = state.binding[name](...args);
	if (r instanceof Error) {
		throw r;
	}
	return r;
}

// feed streams a body (a ReadableStream) into Go with modelPart (or
// another part function).
async function feed(state, body, part = "modelPart") {
	const reader = body.getReader();
	for (;;) {
		const { done, value } = await reader.read();
		if (done) {
			return;
		}
		call(state, part, value instanceof Uint8Array ? value : new Uint8Array(value));
	}
}

function assetURL(path) {
	return new URL(path.replace(/^\/+/, ""), "https://assets.invalid/").toString();
}

async function fetchAsset(env, path) {
	if (!env.ASSETS) {
		throw new Error("MOTE_MODEL_SOURCE=assets needs an assets binding named ASSETS");
	}
	const res = await env.ASSETS.fetch(assetURL(path));
	if (!res.ok) {
		throw new Error(`static asset ${path}: HTTP ${res.status}`);
	}
	return res;
}

// load moves the configured model into Go.
async function load(state, env) {
	const source = env.MOTE_MODEL_SOURCE || "bundle";
	let name = env.MOTE_MODEL_NAME || "";
	let tokenizer;
	if (source === "bundle") {
		if (!bundled) {
			throw new Error("MOTE_MODEL_SOURCE=bundle but this build bundles no model");
		}
		name = name || bundled.name;
		call(state, "modelBegin", bundled.bytes.byteLength);
		call(state, "modelPart", new Uint8Array(bundled.bytes));
		if (bundled.tokenizer) {
			tokenizer = new Uint8Array(bundled.tokenizer);
		}
	} else if (source === "assets") {
		// a manifest {name, bytes, parts: [path...], tokenizer?} written by the build
		const path = env.MOTE_MODEL_PATH;
		if (!path) {
			throw new Error("MOTE_MODEL_SOURCE=assets needs MOTE_MODEL_PATH (the model manifest's path)");
		}
		const m = await (await fetchAsset(env, path)).json();
		const base = path.slice(0, path.lastIndexOf("/") + 1);
		name = name || m.name;
		call(state, "modelBegin", m.bytes);
		for (const part of m.parts) {
			await feed(state, (await fetchAsset(env, base + part)).body);
		}
		if (m.tokenizer) {
			tokenizer = new Uint8Array(await (await fetchAsset(env, base + m.tokenizer)).arrayBuffer());
		}
	} else if (source === "r2") {
		const bucket = env[env.MOTE_R2_BINDING || "MODELS"];
		const key = env.MOTE_MODEL_PATH;
		if (!bucket || !key) {
			throw new Error("MOTE_MODEL_SOURCE=r2 needs an R2 binding (MOTE_R2_BINDING, default MODELS) and MOTE_MODEL_PATH (the object key)");
		}
		const obj = await bucket.get(key);
		if (!obj) {
			throw new Error(`R2 object ${key} not found`);
		}
		name = name || key.replace(/^.*\//, "").replace(/\.[^.]*$/, "");
		call(state, "modelBegin", obj.size);
		await feed(state, obj.body);
		if (env.MOTE_TOKENIZER_PATH) {
			const t = await bucket.get(env.MOTE_TOKENIZER_PATH);
			if (!t) {
				throw new Error(`R2 object ${env.MOTE_TOKENIZER_PATH} not found`);
			}
			tokenizer = new Uint8Array(await t.arrayBuffer());
		}
	} else {
		throw new Error(`MOTE_MODEL_SOURCE=${source}: want bundle, assets or r2`);
	}
	call(state, "modelEnd", name, tokenizer);
}

// loadEncoder moves the sentence encoder from static assets into Go: a
// manifest {name, bytes, parts} at MOTE_ENCODER_PATH, parts beside it.
async function loadEncoder(state, env) {
	const path = env.MOTE_ENCODER_PATH;
	const m = await (await fetchAsset(env, path)).json();
	const base = path.slice(0, path.lastIndexOf("/") + 1);
	call(state, "encoderBegin", m.bytes);
	for (const part of m.parts) {
		await feed(state, (await fetchAsset(env, base + part)).body, "encoderPart");
	}
	call(state, "encoderEnd", env.MOTE_ENCODER_NAME || m.name);
}

// encoderReady loads the encoder once per Go instance, for an embeddings
// request; a failure is recorded by Go (/healthz; the request then gets
// Go's 503) and retried at most every retryLoadMs.
async function encoderReady(state, env) {
	const e = state.encoder;
	if (!e.loaded && !e.loading && Date.now() - e.lastTry >= retryLoadMs) {
		e.lastTry = Date.now();
		e.loading = loadEncoder(state, env)
			.then(() => (e.loaded = true))
			.catch((err) => {
				console.error("mote: loading the encoder failed: " + (err && err.message));
				if (!state.exited) {
					call(state, "encoderFail", String((err && err.message) || err));
				}
			})
			.finally(() => (e.loading = null));
	}
	if (e.loading) {
		await e.loading;
	}
}

// ready returns the resident instance with its model, starting or
// reloading what is missing. A failed load is recorded by Go (/healthz) and
// retried at most every retryLoadMs.
async function ready(env, ctx) {
	context.env = env;
	context.ctx = ctx;
	while (!current) {
		starting = starting || start().finally(() => (starting = null));
		const state = await starting;
		if (!state.exited) {
			current = state;
		}
	}
	const state = current;
	if (!state.loaded && !state.loading && Date.now() - state.lastTry >= retryLoadMs) {
		state.lastTry = Date.now();
		state.loading = load(state, env)
			.then(() => (state.loaded = true))
			.catch((err) => {
				console.error("mote: loading the model failed: " + (err && err.message));
				call(state, "modelFail", String((err && err.message) || err)); // for /healthz
			})
			.finally(() => (state.loading = null));
	}
	if (state.loading) {
		await state.loading;
	}
	context.env = env;
	context.ctx = ctx;
	return state;
}

function jsonError(status, message, code) {
	return new Response(JSON.stringify({ error: { message, type: "server_error", param: null, code } }) + "\n", {
		status,
		headers: { "content-type": "application/json" },
	});
}

export default {
	async fetch(request, env, ctx) {
		let state;
		try {
			state = await ready(env, ctx);
		} catch (err) {
			return jsonError(500, "mote: starting the worker failed: " + ((err && err.message) || err), "start_failed");
		}
		if (env.MOTE_ENCODER_PATH && request.method === "POST" && new URL(request.url).pathname === "/v1/embeddings") {
			await encoderReady(state, env);
			context.env = env;
			context.ctx = ctx;
		}
		let wake;
		const died = new Promise((resolve) => (wake = resolve));
		state.waiters.add(wake);
		const gone = () => jsonError(500, "mote: the Go program exited while answering; the next request starts a new one", "go_exited");
		try {
			// handleRequest throws when Go exits inside the call
			const res = await Promise.race([state.binding.handleRequest(request), died.then(() => null)]);
			return res === null || state.exited ? gone() : res;
		} catch (err) {
			return state.exited ? gone() : jsonError(500, "mote: " + ((err && err.message) || err), "internal");
		} finally {
			state.waiters.delete(wake);
		}
	},
};
