// Package engine is mote's session API for hosts that drive generation one
// token at a time: the js build (wasm/js), the web page's Web Worker and the
// Cloudflare Worker. An Engine holds loaded models by name; a Session is one
// generation whose Next returns one token per call.
//
// It imports the standard library, mote/core and mote/models only, and is
// tested natively. Entry points (wasm/js and the worker glue) only marshal
// arguments and results around it.
//
// Semantics are those of `mote run` (cli/run.go), which are llama2.c's: a
// session encodes its prompt with BOS, forces the prompt tokens, then samples;
// it ends after Options.Steps positions (prompt included, clamped to the
// model's context) or when the model produces BOS. The pieces Next returns,
// concatenated, plus "\n", are byte for byte what `mote run` prints.
//
// Why pull (Next) and not push (a callback or a channel): in a browser or in
// workerd the caller must yield to its event loop between tokens, and a Go
// goroutine feeding a stream needs Go timers, which workerd cancels under
// concurrency (see shared/design/TOOLCHAIN.md). A synchronous Next keeps all
// work inside the caller's own call and needs no goroutine.
//
// Memory: each Session owns its State (activations and KV cache, sized to
// its steps) and Sampler, so sessions on one model never interfere; the
// model's weights are shared and read-only. Next allocates nothing. A
// session releases its memory as soon as it ends; Stop ends it early.
package engine
