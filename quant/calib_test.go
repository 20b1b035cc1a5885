package quant

import (
	"math"
	"runtime"
	"slices"
	"testing"
)

// The calibration forward pass computes what core.Forward computes.
func TestCalibForwardMatchesCore(t *testing.T) {
	m := loadStories(t)
	toks := m.Tokenizer.Encode("Once upon a time, there was a little girl named Lily.", true, false)
	fm := newFloatModel(m)
	s := m.NewState(len(toks))
	const tol = 1e-4 // same operations; core's kernels may sum in another order
	worst := 0.0
	fm.run(toks, nil, func(pos int, l []float32) {
		want := m.Forward(s, toks[pos], pos)
		for i := range l {
			worst = max(worst, math.Abs(float64(l[i]-want[i])))
		}
	})
	if !(worst < tol) {
		t.Errorf("logits differ by %g", worst)
	}
}

// Self-calibration is reproducible: the same seed gives the same tokens on
// any number of cores; another seed gives others. The Gram matrices are
// symmetric, their diagonals positive, and the same on any number of cores.
func TestSelfCalibrationReproducible(t *testing.T) {
	m := loadStories(t)
	a := SelfCalibration(m, 6, 64, 7)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b := SelfCalibration(m, 6, 64, 7)
	c := SelfCalibration(m, 6, 64, 8)
	if len(a) != 6 || len(a[0]) != 65 || a[0][0] != m.Tokenizer.BOS {
		t.Fatalf("shape %d x %d, first %d", len(a), len(a[0]), a[0][0])
	}
	same := func(x, y [][]int) bool {
		return slices.EqualFunc(x, y, func(p, q []int) bool { return slices.Equal(p, q) })
	}
	if !same(a, b) {
		t.Error("same seed, different tokens")
	}
	if same(a, c) {
		t.Error("another seed, same tokens")
	}
	cal1, err := Calibrate(m, a)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GOMAXPROCS(2)
	cal2, _ := Calibrate(m, a)
	if cal1.Tokens != 6*65 {
		t.Errorf("%d tokens", cal1.Tokens)
	}
	for i, g := range cal1.grams() {
		if !slices.Equal(g.H, cal2.grams()[i].H) {
			t.Fatalf("gram %d depends on the number of cores", i)
		}
		for r := 0; r < g.N; r++ {
			if !(g.H[r*g.N+r] > 0) {
				t.Fatalf("gram %d: diagonal %d is %g", i, r, g.H[r*g.N+r])
			}
			for c := 0; c < r; c++ {
				if g.H[r*g.N+c] != g.H[c*g.N+r] {
					t.Fatalf("gram %d not symmetric", i)
				}
			}
		}
	}
}

func TestTextCalibration(t *testing.T) {
	m := loadStories(t)
	seqs, err := TextCalibration(m.Tokenizer, readText(t)[:20000], 256, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 3 || len(seqs[0]) != 257 || seqs[1][0] != m.Tokenizer.BOS {
		t.Errorf("%d sequences of %d", len(seqs), len(seqs[0]))
	}
	if _, err := TextCalibration(m.Tokenizer, "hi", 256, 3); err == nil {
		t.Error("a two-letter text calibrated")
	}
}
