//go:build !amd64 || purego

package core

// Without AVX2 the encoder multiplies one vector at a time with the
// platform's kernels (wasm: the SIMD module's, with -tags mote_simd).
func batchQ8(n, ga int) bool { return false }

func dots4I8(w, x []int8, xstride, n, ga int, isums []int32) { panic("core: dots4I8 without AVX2") }
