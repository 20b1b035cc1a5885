package core

import "math"

// matVecF32 computes out[i] = W[i,:]·x for rows r0..r1-1, accumulating left
// to right in float32 exactly as llama2.c's matmul does. The explicit
// float32() conversion forbids FMA fusion (Go spec), which would change bits.
func matVecF32(out, w, x []float32, n, r0, r1 int) {
	x = x[:n]
	for i := r0; i < r1; i++ {
		row := w[i*n : i*n+n]
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

// matVecQ8 computes out[i] = Σ_groups (Σ q_w·q_x) · s_w · s_x for rows r0..r1-1.
// Integer sums are exact, so any fast variant must give identical bits as
// long as the per-group float terms are added in this order.
func matVecQ8(out []float32, wq []int8, ws []float32, xq []int8, xs []float32, n, gs, r0, r1 int) {
	gpr := (n + gs - 1) / gs
	xq = xq[:n]
	xs = xs[:gpr]
	for i := r0; i < r1; i++ {
		row := wq[i*n : i*n+n]
		rs := ws[i*gpr : i*gpr+gpr]
		var val float32
		for g := range rs {
			j0 := g * gs
			j1 := min(j0+gs, n)
			a := row[j0:j1]
			b := xq[j0:j1]
			b = b[:len(a)]
			var isum int32
			j := 0
			for ; j+4 <= len(a); j += 4 {
				isum += int32(a[j])*int32(b[j]) + int32(a[j+1])*int32(b[j+1]) +
					int32(a[j+2])*int32(b[j+2]) + int32(a[j+3])*int32(b[j+3])
			}
			for ; j < len(a); j++ {
				isum += int32(a[j]) * int32(b[j])
			}
			val += float32(float32(isum)*rs[g]) * xs[g]
		}
		out[i] = val
	}
}

// matVecQ8Ref is the plain specification of matVecQ8.
func matVecQ8Ref(out []float32, wq []int8, ws []float32, xq []int8, xs []float32, n, gs, r0, r1 int) {
	gpr := (n + gs - 1) / gs
	for i := r0; i < r1; i++ {
		var val float32
		for g := 0; g < gpr; g++ {
			var isum int32
			for j := g * gs; j < min((g+1)*gs, n); j++ {
				isum += int32(wq[i*n+j]) * int32(xq[j])
			}
			val += float32(float32(isum)*ws[i*gpr+g]) * xs[g]
		}
		out[i] = val
	}
}

// MatVecJob is one matrix-vector product y = W x, split by output rows.
// A native caller may run Run on disjoint row ranges from several goroutines.
type MatVecJob struct {
	Out []float32 // (rows)
	W   *Mat
	X   []float32 // (cols), used by F32 matrices
	XQ  *QVec     // x quantized, used by Q8 matrices
}

// Run computes output rows r0..r1-1.
func (j *MatVecJob) Run(r0, r1 int) {
	m := j.W
	switch m.Type {
	case F32:
		matVecF32(j.Out, m.F, j.X, m.Cols, r0, r1)
	case Q8:
		matVecQ8(j.Out, m.Q, m.S, j.XQ.Q, j.XQ.S, m.Cols, m.GroupSize, r0, r1)
	}
}

// Parallel splits a job's rows across workers; nil means run on the caller.
// Implementations live outside core (core starts no goroutines).
type Parallel interface {
	Do(rows int, job *MatVecJob)
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

// expf is C's expf: exp rounded to float32.
func expf(x float32) float32 { return float32(math.Exp(float64(x))) }
