//go:build !(wasm && mote_simd)

package core

// SIMD reports whether this build uses the SIMD kernel module.
const SIMD = false

func matVecF32Fast(out, w, x []float32, n, r0, r1 int) { matVecF32(out, w, x, n, r0, r1) }

// attScores writes att[t] = q·k[t] for the keys at k[t*stride:], count = len(att),
// each a left-to-right float32 sum.
func attScores(att, k []float32, stride int, q []float32) {
	for t := range att {
		kt := k[t*stride : t*stride+len(q)]
		var score float32
		for i, qv := range q {
			score += float32(qv * kt[i])
		}
		att[t] = score
	}
}

// attWsum writes out[i] = Σ_t att[t]·v[t*stride+i], summed in order of t.
func attWsum(out, att, v []float32, stride int) {
	clear(out)
	for t, a := range att {
		vt := v[t*stride : t*stride+len(out)]
		for i := range out {
			out[i] += float32(a * vt[i])
		}
	}
}
