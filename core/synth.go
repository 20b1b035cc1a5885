package core

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Shapes of the llama2.c "stories" models, for synthetic benchmarks.
var Shapes = map[string]Config{
	"260K": {Dim: 64, HiddenDim: 172, NLayers: 5, NHeads: 8, NKVHeads: 4, VocabSize: 512, SeqLen: 512},
	"15M":  {Dim: 288, HiddenDim: 768, NLayers: 6, NHeads: 6, NKVHeads: 6, VocabSize: 32000, SeqLen: 256},
	"42M":  {Dim: 512, HiddenDim: 1376, NLayers: 8, NHeads: 8, NKVHeads: 8, VocabSize: 32000, SeqLen: 1024},
	"110M": {Dim: 768, HiddenDim: 2048, NLayers: 12, NHeads: 12, NKVHeads: 12, VocabSize: 32000, SeqLen: 1024},
}

// RandomModel builds a model of the given shape with seeded random weights
// (speed does not depend on the values), fp32 or quantized in groups of gs.
// It has no tokenizer. The classifier is shared with the token embedding.
func RandomModel(c Config, t DType, gs int, seed uint64) (*Model, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if t != F32 && gs <= 0 {
		return nil, fmt.Errorf("%w: group size %d", ErrBadConfig, gs)
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// Quantized matrices are made a row at a time from one scratch row, so
	// that synthesizing a large model never holds its fp32 version.
	mat := func(rows, cols int) Mat {
		// uniform weights with the variance of a trained layer (~1/sqrt(cols))
		scale := float32(1 / math.Sqrt(float64(cols)))
		fill := func(f []float32) {
			for i := range f {
				f[i] = (r.Float32()*2 - 1) * scale
			}
		}
		if t == F32 {
			f := make([]float32, rows*cols)
			fill(f)
			return NewMatF32(rows, cols, f)
		}
		row := NewMatF32(1, cols, make([]float32, cols))
		gpr := (cols + gs - 1) / gs
		var m Mat
		switch t {
		case Q8:
			m = NewMatQ8(rows, cols, gs, make([]int8, rows*cols), make([]float32, rows*gpr))
		case Q4:
			m = NewMatQ4(rows, cols, gs, make([]byte, rows*((cols+1)/2)), IQ4NL, make([]float32, rows*gpr))
		}
		ps := (cols + 1) / 2
		for i := 0; i < rows; i++ {
			fill(row.F)
			if t == Q8 {
				quantizeQ8(m.Q[i*cols:(i+1)*cols], m.S[i*gpr:(i+1)*gpr], row.F, gs)
			} else {
				quantizeRowQ4(m.P[i*ps:(i+1)*ps], m.S[i*gpr:(i+1)*gpr], row.F, gs, &m.Codebook)
			}
		}
		return m
	}
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	layers := func(rows, cols int) []Mat {
		ms := make([]Mat, c.NLayers)
		for i := range ms {
			ms[i] = mat(rows, cols)
		}
		return ms
	}
	d, h, kv, qd := c.Dim, c.HiddenDim, c.KVDim(), c.QDim()
	m := &Model{Config: c}
	w := &m.Weights
	w.TokenEmbedding = mat(c.VocabSize, d)
	w.RmsAtt, w.RmsFFN, w.RmsFinal = ones(c.NLayers*d), ones(c.NLayers*d), ones(d)
	w.Wq, w.Wk, w.Wv, w.Wo = layers(qd, d), layers(kv, d), layers(kv, d), layers(d, qd)
	w.W1, w.W2, w.W3 = layers(h, d), layers(d, h), layers(h, d)
	w.Wcls = &w.TokenEmbedding
	if t != F32 {
		m.ActGroup = gs
	}
	return m, m.Validate()
}

// QuantizeMatQ8 quantizes an fp32 matrix to int8 with one scale per group of
// gs values of a row (max-abs / 127, round to nearest).
func QuantizeMatQ8(m *Mat, gs int) Mat {
	gpr := (m.Cols + gs - 1) / gs
	q := make([]int8, m.Rows*m.Cols)
	s := make([]float32, m.Rows*gpr)
	for i := 0; i < m.Rows; i++ {
		quantizeQ8(q[i*m.Cols:(i+1)*m.Cols], s[i*gpr:(i+1)*gpr], m.F[i*m.Cols:(i+1)*m.Cols], gs)
	}
	return NewMatQ8(m.Rows, m.Cols, gs, q, s)
}

// IQ4NL is a non-linear 4-bit codebook (the values llama.cpp's IQ4_NL uses):
// denser near zero, where most weights are.
var IQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// QuantizeMatQ4 quantizes an fp32 matrix to 4-bit indices into codebook cb,
// one scale per group of gs values of a row: scale = max|w| / max|cb|, each
// weight to the nearest codebook value. (Round to nearest, no search: the
// quant package has the calibrated recipes.)
func QuantizeMatQ4(m *Mat, gs int, cb [16]int8) Mat {
	gpr := (m.Cols + gs - 1) / gs
	ps := (m.Cols + 1) / 2
	p := make([]byte, m.Rows*ps)
	s := make([]float32, m.Rows*gpr)
	for i := 0; i < m.Rows; i++ {
		quantizeRowQ4(p[i*ps:(i+1)*ps], s[i*gpr:(i+1)*gpr], m.F[i*m.Cols:(i+1)*m.Cols], gs, &cb)
	}
	return NewMatQ4(m.Rows, m.Cols, gs, p, cb, s)
}

// quantizeRowQ4 packs one row (see QuantizeMatQ4); p must be zeroed.
func quantizeRowQ4(p []byte, s []float32, row []float32, gs int, cb *[16]int8) {
	var cmax float32
	for _, v := range cb {
		cmax = max(cmax, float32(math.Abs(float64(v))))
	}
	for g := range s {
		j0, j1 := g*gs, min((g+1)*gs, len(row))
		var amax float32
		for _, v := range row[j0:j1] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		scale := amax / cmax
		s[g] = scale
		for j := j0; j < j1; j++ {
			best, bestErr := 0, float32(math.Inf(1))
			for k, c := range cb {
				if e := float32(math.Abs(float64(float32(c)*scale - row[j]))); e < bestErr {
					best, bestErr = k, e
				}
			}
			p[j/2] |= byte(best) << (4 * (j & 1))
		}
	}
}
