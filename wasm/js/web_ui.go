//go:build js && wasm && mote_web

package main

import (
	"syscall/js"

	"mote/web/ui"
)

// With -tags mote_web this build is also the web page's UI (web/ui): one
// wasm file serves the page, where a document exists and the Vugu UI runs
// beside the (unused) raw API, and its Web Worker, where only the engine
// runs. One file instead of two saves the visitor about 0.8 MB of gzip'd Go
// runtime and libraries; see web/ui/doc.go and docs/WEB.md.
func init() {
	if js.Global().Get("document").Truthy() {
		go ui.Run()
	}
}
