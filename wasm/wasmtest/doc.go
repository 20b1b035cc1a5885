// Package wasmtest tests mote's WebAssembly builds from the outside, with
// `go test` on the host: the WASI command (GOOS=wasip1, dist/mote.wasm) runs
// under wazero, the js build (GOOS=js, dist/mote-js.wasm) under Node through
// the JavaScript API of wasm/js/mote.js, and their output must be the bytes
// of the reference and of the native command.
//
// The binaries are built once per test run into a temporary folder, or taken
// from $MOTE_DIST (build.sh passes its dist/ after building it). wazero's
// compiled code is cached in .cache/wazero at the repository root
// (git-ignored), which turns a 1-2 s compile into ~0.1 s on later runs.
//
// It holds no code besides tests: it imports wazero (tests only) and
// mote/cli, to run the native command in-process as the comparison.
package wasmtest
