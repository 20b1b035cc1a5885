package core

import (
	"math"
	"math/rand/v2"
	"testing"
)

// blobs makes n unit vectors per class around k random centres in dim.
func blobs(r *rand.Rand, k, n, dim int, spread float64) []Example {
	centres := make([][]float64, k)
	for c := range centres {
		centres[c] = make([]float64, dim)
		for j := range centres[c] {
			centres[c][j] = r.NormFloat64()
		}
	}
	var ex []Example
	for i := 0; i < n; i++ {
		for c := 0; c < k; c++ {
			v := make([]float32, dim)
			for j := range v {
				v[j] = float32(centres[c][j] + spread*r.NormFloat64())
			}
			Normalize(v)
			ex = append(ex, Example{Val: v, Label: c})
		}
	}
	return ex
}

func accuracy(h *Head, ex []Example) float64 {
	p := make([]float32, len(h.Labels))
	right := 0
	for _, e := range ex {
		h.Probs(e.Val, p)
		best := 0
		for k := range p {
			if p[k] > p[best] {
				best = k
			}
		}
		if best == e.Label {
			right++
		}
	}
	return float64(right) / float64(len(ex))
}

func TestTrainLinear(t *testing.T) {
	all := blobs(rand.New(rand.NewPCG(7, 7)), 3, 200, 16, 0.8)
	train, test := all[:300], all[300:]
	w, b := TrainLinear(16, 3, train, TrainOptions{})
	h := &Head{Labels: []string{"a", "b", "c"}, Dim: 16, W: w, B: b}
	if err := h.Check(); err != nil {
		t.Fatal(err)
	}
	if a := accuracy(h, test); a < 0.95 {
		t.Errorf("held-out accuracy %.3f on separable blobs", a)
	}
	// deterministic
	w2, b2 := TrainLinear(16, 3, train, TrainOptions{})
	if !sameBitsF32(w, w2) || !sameBitsF32(b, b2) {
		t.Fatal("training is not deterministic")
	}
	// an untrained head (zero weights) is at chance
	h0 := &Head{Labels: h.Labels, Dim: 16, W: make([]float32, 48), B: make([]float32, 3)}
	p := make([]float32, 3)
	h0.Probs(test[0].Val, p)
	for _, v := range p {
		if math.Abs(float64(v)-1.0/3) > 1e-6 {
			t.Errorf("zero head gives %v", p)
		}
	}
}

func TestTrainLinearSparse(t *testing.T) {
	// class = which of two feature blocks is active; sparse and dense agree
	var sparse, dense []Example
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		c := i % 2
		idx := []int32{int32(c*10 + r.IntN(10)), int32(20 + r.IntN(5))}
		val := []float32{1, 1}
		sparse = append(sparse, Example{Idx: idx, Val: val, Label: c})
		d := make([]float32, 25)
		for j, x := range idx {
			d[x] += val[j]
		}
		dense = append(dense, Example{Val: d, Label: c})
	}
	ws, bs := TrainLinear(25, 2, sparse, TrainOptions{Epochs: 50})
	wd, bd := TrainLinear(25, 2, dense, TrainOptions{Epochs: 50})
	for i := range ws {
		if math.Abs(float64(ws[i]-wd[i])) > 1e-5 {
			t.Fatalf("weight %d: sparse %v dense %v", i, ws[i], wd[i])
		}
	}
	out, outd := make([]float32, 2), make([]float32, 2)
	LinearScores(ws, bs, 25, sparse[0].Idx, sparse[0].Val, out)
	LinearScores(wd, bd, 25, nil, dense[0].Val, outd)
	if math.Abs(float64(out[0]-outd[0])) > 1e-4 || out[0] <= out[1] {
		t.Errorf("scores sparse %v dense %v (label 0)", out, outd)
	}
}

func TestZeroShotAndSoftmax(t *testing.T) {
	labels := [][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	out := make([]float32, 3)
	ZeroShot([]float32{0.1, 0.9, 0.2}, labels, 0.05, out)
	if !(out[1] > 0.99 && math.Abs(float64(out[0]+out[1]+out[2])-1) < 1e-6) {
		t.Errorf("zero-shot probabilities %v", out)
	}
	x := []float32{1, 2, 3}
	SoftmaxT(x, 1e6) // a huge temperature flattens
	for _, v := range x {
		if math.Abs(float64(v)-1.0/3) > 1e-5 {
			t.Errorf("softmax at t=1e6: %v", x)
		}
	}
	if err := (&Head{Labels: []string{"x"}, Dim: 1, W: []float32{1}, B: []float32{0}}).Check(); err == nil {
		t.Error("a one-label head passed Check")
	}
}

func sameBitsF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
