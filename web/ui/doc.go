// Package ui is the web page's user interface: one Vugu (v0.4.0) component,
// Root (root.vugu for the markup, root.go for its logic), and the bridge
// that mounts it and talks to the page's Web Worker (bridge_js.go).
//
// It runs on the page's main thread inside the same wasm file as the
// engine: the js build of wasm/js with -tags 'mote_web mote_simd' starts
// Run when a document exists (wasm/js/web_ui.go). The Web Worker runs that
// same file through mote.js for inference, so a visitor downloads one Go
// binary, not two (about 0.8 MB gzip saved; see docs/WEB.md).
//
// Why the worker protocol lives in JavaScript (web/static/worker.js) and
// not in Go: fetching with progress, the Cache API, DecompressionStream and
// yielding to the event loop between tokens are browser APIs built on
// promises; calling them through syscall/js would need goroutines and Go
// timers in the worker, which the engine avoids by design (engine/doc.go).
// The worker glue only marshals: all model logic stays in engine.
//
// The component's logic (state, option parsing, messages, formatting) is
// plain Go with no syscall/js, so it is tested natively (root_test.go);
// only bridge_js.go touches the browser.
//
// Imports: the standard library and github.com/vugu/vugu; never mote/core,
// mote/models or mote/engine (the UI thread never runs the model).
//
// root_gen.go is generated from root.vugu by
// `go tool vugugen -s -skip-go-mod ./web/ui` (build.sh runs it).
package ui
