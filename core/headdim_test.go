package core

import (
	"errors"
	"math"
	"testing"
)

func TestHeadDimValidate(t *testing.T) {
	base := Shapes["260K"]
	base.Defaults()
	for _, tc := range []struct {
		name    string
		edit    func(c *Config)
		wantErr bool
	}{
		{"derived", func(c *Config) {}, false},
		{"explicit, equal to dim/n_heads", func(c *Config) { c.HeadDim = 8 }, false},
		{"fewer heads of the same size", func(c *Config) { c.NHeads, c.NKVHeads, c.HeadDim = 6, 3, 8 }, false},
		{"wider than dim", func(c *Config) { c.HeadDim = 16 }, false},
		{"dim not a multiple of n_heads, explicit head size", func(c *Config) { c.NHeads, c.NKVHeads, c.HeadDim = 6, 3, 10 }, false},
		{"dim not a multiple of n_heads, derived", func(c *Config) { c.NHeads, c.NKVHeads = 6, 3 }, true},
		{"odd", func(c *Config) { c.HeadDim = 7 }, true},
		{"negative", func(c *Config) { c.HeadDim = -8 }, true},
		{"too large", func(c *Config) { c.HeadDim = MaxDim + 2 }, true},
		{"q too wide", func(c *Config) { c.NHeads, c.NKVHeads, c.HeadDim = MaxHeads, 1, MaxDim }, true},
	} {
		c := base
		tc.edit(&c)
		err := c.Validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: Validate() = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v is not ErrBadConfig", tc.name, err)
		}
	}
	c := base
	c.NHeads, c.NKVHeads, c.HeadDim = 6, 3, 8
	if c.QDim() != 48 || c.KVDim() != 24 || c.HeadSize() != 8 {
		t.Errorf("q %d kv %d head %d, want 48 24 8", c.QDim(), c.KVDim(), c.HeadSize())
	}
	// every parameter counted: 2 x dim x qDim per layer for wq and wo
	want := base.NumWeights(true) - int64(c.NLayers)*(2*64*16+2*64*8)
	if got := c.NumWeights(true); got != want {
		t.Errorf("NumWeights = %d, want %d", got, want)
	}
}

// A model without the query heads of one key/value group (and that group)
// computes what the full model computes with those heads' wo columns zeroed.
func TestHeadDimPrunedEqualsZeroedHeads(t *testing.T) {
	c := Shapes["260K"]
	c.SeqLen = 32
	full, err := RandomModel(c, F32, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	const drop = 2 // key/value group removed (of 4); each feeds 2 query heads of 8
	hs := c.Dim / c.NHeads
	kvMul := c.NHeads / c.NKVHeads
	pc := full.Config
	pc.NHeads, pc.NKVHeads, pc.HeadDim = c.NHeads-kvMul, c.NKVHeads-1, hs
	pruned := &Model{Config: pc}
	pw, fw := &pruned.Weights, &full.Weights
	pw.TokenEmbedding, pw.RmsAtt, pw.RmsFFN, pw.RmsFinal = fw.TokenEmbedding, fw.RmsAtt, fw.RmsFFN, fw.RmsFinal
	pw.W1, pw.W2, pw.W3 = fw.W1, fw.W2, fw.W3
	pw.Wcls = &pw.TokenEmbedding
	qLo, qHi := drop*kvMul*hs, (drop+1)*kvMul*hs // query rows / wo columns of the group
	kLo, kHi := drop*hs, (drop+1)*hs
	rowsWithout := func(m Mat, lo, hi int) Mat {
		f := append(append([]float32(nil), m.F[:lo*m.Cols]...), m.F[hi*m.Cols:]...)
		return NewMatF32(m.Rows-(hi-lo), m.Cols, f)
	}
	for l := 0; l < c.NLayers; l++ {
		pw.Wq = append(pw.Wq, rowsWithout(fw.Wq[l], qLo, qHi))
		pw.Wk = append(pw.Wk, rowsWithout(fw.Wk[l], kLo, kHi))
		pw.Wv = append(pw.Wv, rowsWithout(fw.Wv[l], kLo, kHi))
		wo := fw.Wo[l]
		var f []float32
		for i := 0; i < wo.Rows; i++ {
			row := wo.F[i*wo.Cols : (i+1)*wo.Cols]
			f = append(append(f, row[:qLo]...), row[qHi:]...)
			clear(row[qLo:qHi]) // the full model loses the group's output
		}
		pw.Wo = append(pw.Wo, NewMatF32(wo.Rows, wo.Cols-(qHi-qLo), f))
	}
	if err := pruned.Validate(); err != nil {
		t.Fatal(err)
	}
	sf, sp := full.NewState(0), pruned.NewState(0)
	for pos, tok := range []int{1, 45, 300, 12, 511, 7, 7, 90, 200, 3} {
		lf := full.Forward(sf, tok, pos)
		lp := pruned.Forward(sp, tok, pos)
		for i := range lf {
			if d := math.Abs(float64(lf[i] - lp[i])); d > 1e-4*(1+math.Abs(float64(lf[i]))) {
				t.Fatalf("pos %d logit %d: full %g, pruned %g", pos, i, lf[i], lp[i])
			}
		}
	}
}

// Heads wider than dim/n_heads (query wider than the residual stream) run
// with float and with int8 activations, and the two agree.
func TestHeadDimWiderThanDim(t *testing.T) {
	c := Config{Dim: 32, HiddenDim: 48, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 12, VocabSize: 40, SeqLen: 16}
	mf, err := RandomModel(c, F32, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	mq, err := RandomModel(c, Q8, 16, 3)
	if err != nil {
		t.Fatal(err)
	}
	if mf.Weights.Wq[0].Rows != 48 || mf.Weights.Wo[0].Cols != 48 {
		t.Fatalf("wq %dx%d, wo %dx%d", mf.Weights.Wq[0].Rows, mf.Weights.Wq[0].Cols, mf.Weights.Wo[0].Rows, mf.Weights.Wo[0].Cols)
	}
	sf, sq := mf.NewState(0), mq.NewState(0)
	for pos := 0; pos < c.SeqLen; pos++ {
		lf := mf.Forward(sf, (pos*7)%c.VocabSize, pos)
		lq := mq.Forward(sq, (pos*7)%c.VocabSize, pos)
		var num, den float64
		for i := range lf {
			if math.IsNaN(float64(lf[i])) || math.IsInf(float64(lf[i]), 0) {
				t.Fatalf("pos %d: logit %d is %g", pos, i, lf[i])
			}
			num += float64((lf[i] - lq[i]) * (lf[i] - lq[i]))
			den += float64(lf[i] * lf[i])
		}
		if num > 1e-3*den {
			t.Errorf("pos %d: int8 and float logits differ by %.3g (relative energy)", pos, num/den)
		}
	}
}
