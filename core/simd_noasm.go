//go:build !(wasm && mote_simd) && !(amd64 && !purego)

package core

// SIMD reports whether this build uses the WebAssembly SIMD kernel module.
const SIMD = false

// Kernels names the kernel set in use.
func Kernels() string { return "go" }

func matVecQ8Fast(out []float32, wq []int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int) {
	matVecQ8(out, wq, ws, xq, xs, n, gw, ga, r0, r1)
}

func matVecQ4Fast(out []float32, wp []byte, cb *[16]int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int) {
	matVecQ4(out, wp, cb, ws, xq, xs, n, gw, ga, r0, r1)
}
