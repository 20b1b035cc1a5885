// Package simd carries mote's WebAssembly SIMD kernel module (kernels.wat,
// assembled to kernels.wasm by build.sh with wabt's wat2wasm, both committed)
// and the wazero glue that runs a Go wasip1 module built with -tags mote_simd
// against it.
//
// Why a separate hand-written module: Go 1.26 emits no SIMD for wasm. The
// kernels share the Go module's linear memory and are imported by core
// through //go:wasmimport (module "mote_simd"). The import cycle (Go imports
// the kernels, the kernels import Go's memory) is broken by a trampoline:
// a host module forwards each call to the kernel instance, which is
// instantiated after the Go module but before its _start runs. Browsers and
// workerd do the same with a JS object in the import object.
//
// Alternatives measured (../shared/design/TOOLCHAIN.md): Go 1.27's
// experimental simd/archsimd gives 4-5x over scalar Go wasm on int8 matvec,
// the hand-written module 15x, and works on Go 1.26 and in every runtime.
package simd
