package core

import "math"

// matVecF32 computes out[i] = W[i,:]·x for rows r0..r1-1, accumulating left
// to right in float32 exactly as llama2.c's matmul does. The explicit
// float32() conversion forbids FMA fusion (Go spec), which would change bits.
// Four rows run side by side: each row keeps its own sequential sum (so the
// bits do not change) while the four dependency chains overlap in the CPU.
// Measured (BenchmarkForward/260K/f32, amd64, same loaded VM): one row at a
// time 2,759 tok/s, four rows 3,574; bounds-check-free inner loops 2,790 ->
// 3,540 (two runs each, interleaved).
func matVecF32(out, w, x []float32, n, r0, r1 int) {
	x = x[:n]
	i := r0
	for ; i+4 <= r1; i += 4 {
		// [:len(x)] lets the compiler drop the bounds checks in the loop
		w0 := w[i*n:][:len(x)]
		w1 := w[(i+1)*n:][:len(x)]
		w2 := w[(i+2)*n:][:len(x)]
		w3 := w[(i+3)*n:][:len(x)]
		var v0, v1, v2, v3 float32
		for j, xv := range x {
			v0 += float32(w0[j] * xv)
			v1 += float32(w1[j] * xv)
			v2 += float32(w2[j] * xv)
			v3 += float32(w3[j] * xv)
		}
		out[i], out[i+1], out[i+2], out[i+3] = v0, v1, v2, v3
	}
	for ; i < r1; i++ {
		row := w[i*n:][:len(x)]
		var val float32
		for j, xv := range x {
			val += float32(row[j] * xv)
		}
		out[i] = val
	}
}

// matVecF32Ref is the plain specification of matVecF32.
func matVecF32Ref(out, w, x []float32, n, r0, r1 int) {
	for i := r0; i < r1; i++ {
		var val float32
		for j := 0; j < n; j++ {
			val += float32(w[i*n+j] * x[j])
		}
		out[i] = val
	}
}

// QVec is an activation vector quantized to int8 in groups, to be multiplied
// with a Q8 matrix whose rows use the same group size.
type QVec struct {
	Q         []int8    // (n)
	S         []float32 // (ceil(n/groupSize))
	GroupSize int
}

// NewQVec allocates room for an n-vector in groups of gs.
func NewQVec(n, gs int) QVec {
	return QVec{Q: make([]int8, n), S: make([]float32, (n+gs-1)/gs), GroupSize: gs}
}

// QuantizeQ8 fills q from x (see quantizeQ8).
func QuantizeQ8(q *QVec, x []float32) { quantizeQ8Fast(q.Q, q.S, x, q.GroupSize) }

// quantizeQ8 quantizes x into q in groups of gs (the last may be shorter):
// scale = max|x|/127, q = round(x/scale), as llama2.c's runq does.
func quantizeQ8(q []int8, s []float32, x []float32, gs int) {
	for g, j0 := 0, 0; j0 < len(x); g, j0 = g+1, j0+gs {
		j1 := min(j0+gs, len(x))
		var amax float32
		for _, v := range x[j0:j1] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		scale := amax / 127
		s[g] = scale
		if scale == 0 {
			for j := j0; j < j1; j++ {
				q[j] = 0
			}
			continue
		}
		for j := j0; j < j1; j++ {
			q[j] = int8(math.Round(float64(x[j] / scale)))
		}
	}
}

// The quantized kernels below compute, for rows r0..r1-1,
//
//	out[i] = Σ_g ws[i,g] · Σ_{a in g} float32(Σ_{j in a} w[i,j]·xq[j]) · xs[a]
//
// where g runs over the weight groups of a row (gw values, the last may be
// shorter) and a over the activation groups (ga values) inside each weight
// group: gw must be a multiple of ga, or cover the whole row. Integer sums
// are exact, so a fast variant gives identical bits as long as it adds the
// float terms in this order. The float-activation twins (suffix F) compute
// Σ_g ws[i,g] · Σ_{j in g} float32(w[i,j])·x[j] instead.

// matVecQ8 is the int8-weights x int8-activations kernel.
func matVecQ8(out []float32, wq []int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int) {
	gpr := (n + gw - 1) / gw
	xq = xq[:n]
	for i := r0; i < r1; i++ {
		row := wq[i*n : i*n+n]
		rs := ws[i*gpr : i*gpr+gpr]
		var val float32
		for g, j0 := 0, 0; g < len(rs); g, j0 = g+1, j0+gw {
			j1 := min(j0+gw, n)
			var acc float32
			for a0 := j0; a0 < j1; a0 += ga {
				a1 := min(a0+ga, j1)
				acc += float32(dotI8(row[a0:a1], xq[a0:a1])) * xs[a0/ga]
			}
			val += acc * rs[g]
		}
		out[i] = val
	}
}

// dotI8 is the exact integer dot product of two int8 vectors of equal length.
func dotI8(a, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1 int32
	j := 0
	for ; j+4 <= len(a); j += 4 {
		s0 += int32(a[j])*int32(b[j]) + int32(a[j+1])*int32(b[j+1])
		s1 += int32(a[j+2])*int32(b[j+2]) + int32(a[j+3])*int32(b[j+3])
	}
	for ; j < len(a); j++ {
		s0 += int32(a[j]) * int32(b[j])
	}
	return s0 + s1
}

// matVecQ8Ref is the plain specification of matVecQ8.
func matVecQ8Ref(out []float32, wq []int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int) {
	gpr := (n + gw - 1) / gw
	for i := r0; i < r1; i++ {
		var val float32
		for g := 0; g < gpr; g++ {
			var acc float32
			for a0 := g * gw; a0 < min((g+1)*gw, n); a0 += ga {
				var isum int32
				for j := a0; j < min(a0+ga, (g+1)*gw, n); j++ {
					isum += int32(wq[i*n+j]) * int32(xq[j])
				}
				acc += float32(isum) * xs[a0/ga]
			}
			val += acc * ws[i*gpr+g]
		}
		out[i] = val
	}
}

// matVecQ8F is the int8-weights x float-activations kernel.
func matVecQ8F(out []float32, wq []int8, ws []float32, x []float32, n, gw, r0, r1 int) {
	gpr := (n + gw - 1) / gw
	x = x[:n]
	for i := r0; i < r1; i++ {
		row := wq[i*n : i*n+n]
		rs := ws[i*gpr : i*gpr+gpr]
		var val float32
		for g, j0 := 0, 0; g < len(rs); g, j0 = g+1, j0+gw {
			j1 := min(j0+gw, n)
			a, b := row[j0:j1], x[j0:j1]
			b = b[:len(a)]
			var acc float32
			for j, q := range a {
				acc += float32(float32(q) * b[j])
			}
			val += acc * rs[g]
		}
		out[i] = val
	}
}

// matVecQ8FRef is the plain specification of matVecQ8F.
func matVecQ8FRef(out []float32, wq []int8, ws []float32, x []float32, n, gw, r0, r1 int) {
	gpr := (n + gw - 1) / gw
	for i := r0; i < r1; i++ {
		var val float32
		for g := 0; g < gpr; g++ {
			var acc float32
			for j := g * gw; j < min((g+1)*gw, n); j++ {
				acc += float32(float32(wq[i*n+j]) * x[j])
			}
			val += acc * ws[i*gpr+g]
		}
		out[i] = val
	}
}

// matVecQ4 is the 4-bit-codebook-weights x int8-activations kernel. Rows
// are packed two indices a byte, low nibble first; cb maps index to int8.
func matVecQ4(out []float32, wp []byte, cb *[16]int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int) {
	gpr := (n + gw - 1) / gw
	ps := (n + 1) / 2
	xq = xq[:n]
	for i := r0; i < r1; i++ {
		row := wp[i*ps : i*ps+ps]
		rs := ws[i*gpr : i*gpr+gpr]
		var val float32
		for g, j0 := 0, 0; g < len(rs); g, j0 = g+1, j0+gw {
			j1 := min(j0+gw, n)
			var acc float32
			for a0 := j0; a0 < j1; a0 += ga {
				a1 := min(a0+ga, j1)
				acc += float32(dotQ4(row, cb, xq, a0, a1)) * xs[a0/ga]
			}
			val += acc * rs[g]
		}
		out[i] = val
	}
}

// dotQ4 is Σ cb[index j]·xq[j] for j in [j0, j1) of a packed row.
func dotQ4(row []byte, cb *[16]int8, xq []int8, j0, j1 int) int32 {
	var s int32
	j := j0
	if j&1 == 1 && j < j1 {
		s += int32(cb[row[j/2]>>4]) * int32(xq[j])
		j++
	}
	for ; j+2 <= j1; j += 2 {
		b := row[j/2]
		s += int32(cb[b&15])*int32(xq[j]) + int32(cb[b>>4])*int32(xq[j+1])
	}
	if j < j1 {
		s += int32(cb[row[j/2]&15]) * int32(xq[j])
	}
	return s
}

// matVecQ4Ref is the plain specification of matVecQ4.
func matVecQ4Ref(out []float32, wp []byte, cb *[16]int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int) {
	gpr := (n + gw - 1) / gw
	ps := (n + 1) / 2
	for i := r0; i < r1; i++ {
		var val float32
		for g := 0; g < gpr; g++ {
			var acc float32
			for a0 := g * gw; a0 < min((g+1)*gw, n); a0 += ga {
				var isum int32
				for j := a0; j < min(a0+ga, (g+1)*gw, n); j++ {
					isum += int32(cb[nibble(wp[i*ps:], j)]) * int32(xq[j])
				}
				acc += float32(isum) * xs[a0/ga]
			}
			val += acc * ws[i*gpr+g]
		}
		out[i] = val
	}
}

// matVecQ4F is the 4-bit-codebook-weights x float-activations kernel.
func matVecQ4F(out []float32, wp []byte, cb *[16]int8, ws []float32, x []float32, n, gw, r0, r1 int) {
	gpr := (n + gw - 1) / gw
	ps := (n + 1) / 2
	var cbf [16]float32
	for k, v := range cb {
		cbf[k] = float32(v)
	}
	x = x[:n]
	for i := r0; i < r1; i++ {
		row := wp[i*ps : i*ps+ps]
		rs := ws[i*gpr : i*gpr+gpr]
		var val float32
		for g, j0 := 0, 0; g < len(rs); g, j0 = g+1, j0+gw {
			j1 := min(j0+gw, n)
			var acc float32
			for j := j0; j < j1; j++ {
				acc += float32(cbf[row[j/2]>>(4*(j&1))&15] * x[j])
			}
			val += acc * rs[g]
		}
		out[i] = val
	}
}

// matVecQ4FRef is the plain specification of matVecQ4F.
func matVecQ4FRef(out []float32, wp []byte, cb *[16]int8, ws []float32, x []float32, n, gw, r0, r1 int) {
	gpr := (n + gw - 1) / gw
	ps := (n + 1) / 2
	for i := r0; i < r1; i++ {
		var val float32
		for g := 0; g < gpr; g++ {
			var acc float32
			for j := g * gw; j < min((g+1)*gw, n); j++ {
				acc += float32(float32(cb[nibble(wp[i*ps:], j)]) * x[j])
			}
			val += acc * ws[i*gpr+g]
		}
		out[i] = val
	}
}

// MatVecJob is one matrix-vector product y = W x, split by output rows.
// A native caller may run Run on disjoint row ranges from several goroutines.
type MatVecJob struct {
	Out []float32 // (rows)
	W   *Mat
	X   []float32 // (cols)
	XQ  *QVec     // x quantized for integer kernels, or nil for float activations
}

// Run computes output rows r0..r1-1.
func (j *MatVecJob) Run(r0, r1 int) {
	m := j.W
	switch {
	case m.Type == F32:
		matVecF32Fast(j.Out, m.F, j.X, m.Cols, r0, r1)
	case m.Type == Q8 && j.XQ != nil:
		matVecQ8Fast(j.Out, m.Q, m.S, j.XQ.Q, j.XQ.S, m.Cols, m.GroupSize, j.XQ.GroupSize, r0, r1)
	case m.Type == Q8:
		matVecQ8F(j.Out, m.Q, m.S, j.X, m.Cols, m.GroupSize, r0, r1)
	case m.Type == Q4 && j.XQ != nil:
		matVecQ4Fast(j.Out, m.P, &m.Codebook, m.S, j.XQ.Q, j.XQ.S, m.Cols, m.GroupSize, j.XQ.GroupSize, r0, r1)
	case m.Type == Q4:
		matVecQ4F(j.Out, m.P, &m.Codebook, m.S, j.X, m.Cols, m.GroupSize, r0, r1)
	}
}

// Parallel splits a job's rows across workers; nil means run on the caller.
// Implementations live outside core (core starts no goroutines).
type Parallel interface {
	Do(rows int, job *MatVecJob)
}

// attendHeadRef is one attention head as llama2.c computes it: scores
// att[t] = (q·k_t)/sqrt(headSize) for the keys at k[t*stride:] (t < len(att),
// each a left-to-right float32 sum), softmax over att, then
// out[i] = Σ_t att[t]·v_t[i] summed in order of t.
func attendHeadRef(q, k, v []float32, stride int, att, out []float32, sqrtHS float32) {
	attScores(att, k, stride, q)
	for t := range att {
		att[t] /= sqrtHS
	}
	softmax(att)
	attWsum(out, att, v, stride)
}

// rmsnorm writes o = weight * x / rms(x), in llama2.c's order of operations.
func rmsnorm(o, x, weight []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += float32(v * v)
	}
	ss /= float32(len(x))
	ss += eps
	ss = 1 / float32(math.Sqrt(float64(ss)))
	weight = weight[:len(x)]
	o = o[:len(x)]
	for j, v := range x {
		o[j] = weight[j] * float32(ss*v)
	}
}

// swigluRef is the FFN's gate: h[i] = silu(h[i]) * g[i], each step rounded
// to float32 as llama2.c's loop does.
func swigluRef(h, g []float32) {
	g = g[:len(h)]
	for i, val := range h {
		val *= 1 / (1 + expf(-val))
		val *= g[i]
		h[i] = val
	}
}

// softmax normalizes x in place as llama2.c does (max-shifted exp, float32 sum).
func softmax(x []float32) {
	maxVal := x[0]
	for _, v := range x[1:] {
		if v > maxVal {
			maxVal = v
		}
	}
	var sum float32
	for i, v := range x {
		e := expf(v - maxVal)
		x[i] = e
		sum += e
	}
	for i := range x {
		x[i] /= sum
	}
}

// attScores writes att[t] = q·k_t for the keys at k[t*stride:], t < len(att),
// each a left-to-right float32 sum (the score step of attendHeadRef).
func attScores(att, k []float32, stride int, q []float32) {
	for t := range att {
		kt := k[t*stride:][:len(q)]
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
		vt := v[t*stride:][:len(out)]
		for i := range out {
			out[i] += float32(a * vt[i])
		}
	}
}
