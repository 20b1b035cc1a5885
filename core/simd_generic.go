//go:build !(wasm && mote_simd)

package core

func matVecF32Fast(out, w, x []float32, n, r0, r1 int) { matVecF32(out, w, x, n, r0, r1) }

// attendHead runs one attention head (see attendHeadRef).
func attendHead(q, k, v []float32, stride int, att, out []float32, sqrtHS float32) {
	attendHeadRef(q, k, v, stride, att, out, sqrtHS)
}

func quantizeQ8Fast(q []int8, s []float32, x []float32, gs int) { quantizeQ8(q, s, x, gs) }

func swiglu(h, g []float32) { swigluRef(h, g) }

func softmaxFast(x []float32) { softmax(x) }

func argmaxFast(x []float32) int { return argmaxRef(x) }
