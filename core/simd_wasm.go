//go:build wasm && mote_simd

package core

import "unsafe"

// With the mote_simd tag, the wasm build calls the WebAssembly SIMD kernels
// of wasm/simd/kernels.wat, imported as module "mote_simd". Each is
// bit-identical to the plain-Go kernel it replaces (tested in wasm/).
// Pointers are addresses in the Go module's linear memory, which the kernel
// module imports; Go's heap does not move, and the slices stay alive for the
// call (the pointers are derived from live slices held by the caller). The
// kernels keep no pointer after they return, hence //go:noescape: without
// it every slice passed would escape, and a MatVecJob or QVec built on the
// stack (the encoder's per-token path) would be allocated on each call.

//go:noescape
//go:wasmimport mote_simd matvec_f32
func simdMatVecF32(out, w unsafe.Pointer, stride int32, x unsafe.Pointer, n, rows int32)

//go:noescape
//go:wasmimport mote_simd attention
func simdAttention(q, k, v unsafe.Pointer, stride, hs, count int32, att, out unsafe.Pointer, sqrths float32)

//go:noescape
//go:wasmimport mote_simd quantize_q8
func simdQuantizeQ8(x unsafe.Pointer, n, ga int32, q, s unsafe.Pointer)

//go:noescape
//go:wasmimport mote_simd matvec_q8
func simdMatVecQ8(out, w, ws, xq, xs unsafe.Pointer, n, gw, ga, rows int32)

//go:noescape
//go:wasmimport mote_simd matvec_q4
func simdMatVecQ4(out, w, cb, ws, xq, xs unsafe.Pointer, n, gw, ga, rows int32)

//go:noescape
//go:wasmimport mote_simd softmax
func simdSoftmax(x unsafe.Pointer, n int32)

//go:noescape
//go:wasmimport mote_simd swiglu
func simdSwiglu(h, g unsafe.Pointer, n int32)

//go:noescape
//go:wasmimport mote_simd argmax
func simdArgmax(x unsafe.Pointer, n int32) int32

// SIMD reports whether this build uses the SIMD kernel module.
const SIMD = true

// Kernels names the kernel set in use.
func Kernels() string { return "wasm-simd128" }

func matVecF32Fast(out, w, x []float32, n, r0, r1 int) {
	if r1 <= r0 {
		return
	}
	_ = w[r1*n-1]
	_ = x[n-1]
	simdMatVecF32(unsafe.Pointer(&out[r0]), unsafe.Pointer(&w[r0*n]), int32(n), unsafe.Pointer(&x[0]), int32(n), int32(r1-r0))
}

func matVecQ8Fast(out []float32, wq []int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int) {
	if r1 <= r0 {
		return
	}
	gpr := (n + gw - 1) / gw
	_ = wq[r1*n-1]
	_ = ws[r1*gpr-1]
	_ = out[r1-1]
	_ = xq[n-1]
	_ = xs[(n-1)/ga]
	simdMatVecQ8(unsafe.Pointer(&out[r0]), unsafe.Pointer(&wq[r0*n]), unsafe.Pointer(&ws[r0*gpr]),
		unsafe.Pointer(&xq[0]), unsafe.Pointer(&xs[0]), int32(n), int32(gw), int32(ga), int32(r1-r0))
}

func matVecQ4Fast(out []float32, wp []byte, cb *[16]int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int) {
	if r1 <= r0 {
		return
	}
	gpr := (n + gw - 1) / gw
	ps := (n + 1) / 2
	_ = wp[r1*ps-1]
	_ = ws[r1*gpr-1]
	_ = out[r1-1]
	_ = xq[n-1]
	_ = xs[(n-1)/ga]
	simdMatVecQ4(unsafe.Pointer(&out[r0]), unsafe.Pointer(&wp[r0*ps]), unsafe.Pointer(cb), unsafe.Pointer(&ws[r0*gpr]),
		unsafe.Pointer(&xq[0]), unsafe.Pointer(&xs[0]), int32(n), int32(gw), int32(ga), int32(r1-r0))
}

// attendHead runs one attention head in one kernel call (see attendHeadRef).
func attendHead(q, k, v []float32, stride int, att, out []float32, sqrtHS float32) {
	n := len(q)
	_ = k[(len(att)-1)*stride+n-1]
	_ = v[(len(att)-1)*stride+n-1]
	_ = out[n-1]
	simdAttention(unsafe.Pointer(&q[0]), unsafe.Pointer(&k[0]), unsafe.Pointer(&v[0]), int32(stride), int32(n),
		int32(len(att)), unsafe.Pointer(&att[0]), unsafe.Pointer(&out[0]), sqrtHS)
}

func quantizeQ8Fast(q []int8, s []float32, x []float32, gs int) {
	n := len(x)
	if n == 0 {
		return
	}
	_ = q[n-1]
	_ = s[(n-1)/gs]
	simdQuantizeQ8(unsafe.Pointer(&x[0]), int32(n), int32(gs), unsafe.Pointer(&q[0]), unsafe.Pointer(&s[0]))
}

// swiglu is swigluRef in one kernel call.
func swiglu(h, g []float32) {
	if len(h) == 0 {
		return
	}
	_ = g[len(h)-1]
	simdSwiglu(unsafe.Pointer(&h[0]), unsafe.Pointer(&g[0]), int32(len(h)))
}

// softmaxFast is softmax in one kernel call.
func softmaxFast(x []float32) {
	if len(x) == 0 {
		return
	}
	simdSoftmax(unsafe.Pointer(&x[0]), int32(len(x)))
}

// argmaxFast is argmaxRef in one kernel call.
func argmaxFast(x []float32) int {
	_ = x[0]
	return int(simdArgmax(unsafe.Pointer(&x[0]), int32(len(x))))
}
