package core

import (
	"fmt"
	"math"
)

// Weights are a llama model's parameters. Per-layer matrices are one Mat per
// layer; Mat rows are outputs (y = W x), as llama2.c stores them.
type Weights struct {
	TokenEmbedding Mat       // (vocab, dim)
	RmsAtt         []float32 // (layer, dim)
	Wq             []Mat     // (layer) x (qDim, dim); qDim = nHeads*headSize, dim unless heads were pruned
	Wk             []Mat     // (layer) x (kvDim, dim)
	Wv             []Mat     // (layer) x (kvDim, dim)
	Wo             []Mat     // (layer) x (dim, qDim)
	RmsFFN         []float32 // (layer, dim)
	W1             []Mat     // (layer) x (hidden, dim)
	W2             []Mat     // (layer) x (dim, hidden)
	W3             []Mat     // (layer) x (hidden, dim)
	RmsFinal       []float32 // (dim)
	Wcls           *Mat      // (vocab, dim); points at TokenEmbedding when shared
}

// Model is a loaded llama model: shape, weights and (optionally) tokenizer.
type Model struct {
	Config    Config
	Weights   Weights
	Tokenizer *Tokenizer

	// ActGroup is the group size in which activations are quantized to int8
	// before they meet quantized weights (integer kernels); 0 keeps them in
	// float32 (slower, a little more accurate). Every quantized matrix's
	// GroupSize must be a multiple of it or cover the whole row.
	ActGroup int
}

// SharedClassifier reports whether the classifier is the token embedding.
func (m *Model) SharedClassifier() bool { return m.Weights.Wcls == &m.Weights.TokenEmbedding }

// Validate checks every tensor against the config. Loaders call it once, so
// that Forward may index without further checks.
func (m *Model) Validate() error {
	c := &m.Config
	if err := c.Validate(); err != nil {
		return err
	}
	w := &m.Weights
	check := func(name string, mat *Mat, rows, cols int) error {
		if mat == nil {
			return fmt.Errorf("%w: %s missing", ErrBadConfig, name)
		}
		if mat.Rows != rows || mat.Cols != cols {
			return fmt.Errorf("%w: %s is %dx%d, want %dx%d", ErrBadConfig, name, mat.Rows, mat.Cols, rows, cols)
		}
		if err := mat.Check(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	vec := func(name string, v []float32, n int) error {
		if len(v) != n {
			return fmt.Errorf("%w: %s has %d values, want %d", ErrBadConfig, name, len(v), n)
		}
		return nil
	}
	d, h, kv, qd, l := c.Dim, c.HiddenDim, c.KVDim(), c.QDim(), c.NLayers
	if err := check("token embedding", &w.TokenEmbedding, c.VocabSize, d); err != nil {
		return err
	}
	if err := check("classifier", w.Wcls, c.VocabSize, d); err != nil {
		return err
	}
	for _, e := range []error{vec("rms_att", w.RmsAtt, l*d), vec("rms_ffn", w.RmsFFN, l*d), vec("rms_final", w.RmsFinal, d)} {
		if e != nil {
			return e
		}
	}
	for _, t := range []struct {
		name       string
		m          []Mat
		rows, cols int
	}{{"wq", w.Wq, qd, d}, {"wk", w.Wk, kv, d}, {"wv", w.Wv, kv, d}, {"wo", w.Wo, d, qd},
		{"w1", w.W1, h, d}, {"w2", w.W2, d, h}, {"w3", w.W3, h, d}} {
		if len(t.m) != l {
			return fmt.Errorf("%w: %s has %d layers, want %d", ErrBadConfig, t.name, len(t.m), l)
		}
		for i := range t.m {
			if err := check(fmt.Sprintf("%s[%d]", t.name, i), &t.m[i], t.rows, t.cols); err != nil {
				return err
			}
		}
	}
	// Weight groups must be made of whole activation groups.
	if m.ActGroup < 0 || m.ActGroup > MaxDim*8 {
		return fmt.Errorf("%w: activation group %d", ErrBadConfig, m.ActGroup)
	}
	if m.ActGroup > 0 {
		all := []*Mat{&w.TokenEmbedding, w.Wcls}
		for _, set := range [][]Mat{w.Wq, w.Wk, w.Wv, w.Wo, w.W1, w.W2, w.W3} {
			for i := range set {
				all = append(all, &set[i])
			}
		}
		for _, mat := range all {
			if mat.Type != F32 && mat.GroupSize%m.ActGroup != 0 && mat.GroupSize < mat.Cols {
				return fmt.Errorf("%w: a %v matrix of %d columns has weight groups of %d, not a multiple of the activation group %d",
					ErrBadConfig, mat.Type, mat.Cols, mat.GroupSize, m.ActGroup)
			}
		}
	}
	if m.Tokenizer != nil && len(m.Tokenizer.Vocab) != c.VocabSize {
		return fmt.Errorf("%w: tokenizer has %d tokens, model %d", ErrBadConfig, len(m.Tokenizer.Vocab), c.VocabSize)
	}
	return nil
}

// State is the scratch memory of one generation: activations and KV cache.
// All buffers are allocated once; Forward allocates nothing.
type State struct {
	x      []float32 // activation at current time stamp (dim)
	xb     []float32 // same, inside a residual branch (max(dim, qDim): also the heads' output)
	xb2    []float32 // an additional buffer (dim)
	hb     []float32 // FFN hidden (hidden)
	hb2    []float32 // FFN hidden (hidden)
	q      []float32 // query (qDim)
	att    []float32 // attention scores (heads, maxSeq)
	logits []float32 // output (vocab)

	keyCache   []float32 // (layer, maxSeq, kvDim)
	valueCache []float32 // (layer, maxSeq, kvDim)

	xq  *QVec // quantized copy of xb or x (max(dim, qDim)), nil for float activations
	hq  *QVec // quantized copy of hb (hidden), nil for float activations
	job MatVecJob

	MaxSeq int       // positions the KV cache holds
	Par    Parallel  // optional row splitter for big matrices (native callers)
	rope   []float32 // (maxSeq, headSize/2, 2) cos/sin table
}

// NewState allocates scratch memory for positions 0..maxSeq-1
// (maxSeq <= 0 or > SeqLen means SeqLen).
func (m *Model) NewState(maxSeq int) *State {
	c := &m.Config
	if maxSeq <= 0 || maxSeq > c.SeqLen {
		maxSeq = c.SeqLen
	}
	kv, wide := c.KVDim(), max(c.Dim, c.QDim())
	s := &State{
		x: make([]float32, c.Dim), xb: make([]float32, wide), xb2: make([]float32, c.Dim),
		hb: make([]float32, c.HiddenDim), hb2: make([]float32, c.HiddenDim),
		q: make([]float32, c.QDim()), att: make([]float32, c.NHeads*maxSeq),
		logits:     make([]float32, c.VocabSize),
		keyCache:   make([]float32, c.NLayers*maxSeq*kv),
		valueCache: make([]float32, c.NLayers*maxSeq*kv),
		MaxSeq:     maxSeq,
	}
	if m.ActGroup > 0 {
		xq, hq := NewQVec(wide, m.ActGroup), NewQVec(c.HiddenDim, m.ActGroup)
		s.xq, s.hq = &xq, &hq
	}
	s.rope = ropeTable(c, maxSeq)
	return s
}

// ropeTable precomputes llama2.c's rotation: for pair i (even) of a head,
// freq = 1/theta^(i/headSize), angle = pos*freq, all in float32.
func ropeTable(c *Config, maxSeq int) []float32 {
	hs := c.HeadSize()
	t := make([]float32, maxSeq*hs)
	for pos := 0; pos < maxSeq; pos++ {
		for i := 0; i < hs; i += 2 {
			freq := 1 / float32(math.Pow(float64(c.RopeTheta), float64(float32(i)/float32(hs))))
			val := float32(pos) * freq
			t[pos*hs+i] = float32(math.Cos(float64(val)))
			t[pos*hs+i+1] = float32(math.Sin(float64(val)))
		}
	}
	return t
}

// ropeRotate rotates each head of v (heads of len(rope) values) pair by
// pair with one position's table, as llama2.c's loop does for q and k.
func ropeRotate(v, rope []float32) {
	hs := len(rope)
	for h0 := 0; h0+hs <= len(v); h0 += hs {
		head := v[h0 : h0+hs]
		for i := 0; i+1 < len(head); i += 2 {
			fcr, fci := rope[i], rope[i+1]
			v0, v1 := head[i], head[i+1]
			head[i] = float32(v0*fcr) - float32(v1*fci)
			head[i+1] = float32(v0*fci) + float32(v1*fcr)
		}
	}
}

// Reset forgets the KV cache contents (not needed between generations that
// restart at position 0, since every position is written before it is read).
func (s *State) Reset() { clear(s.keyCache); clear(s.valueCache) }

// matVec runs y = W x over all rows, quantizing nothing: the caller has
// already filled xq when W is Q8.
func (s *State) matVec(out []float32, w *Mat, x []float32, xq *QVec) {
	j := &s.job
	j.Out, j.W, j.X, j.XQ = out, w, x, xq
	if s.Par != nil && w.Rows*w.Cols >= 1<<16 {
		s.Par.Do(w.Rows, j)
		return
	}
	j.Run(0, w.Rows)
}

// quantizeFor fills qv from x when qv is in use and m is quantized.
func quantizeFor(qv *QVec, x []float32, m *Mat) {
	if qv != nil && m.Type != F32 {
		quantizeQ8Fast(qv.Q, qv.S, x, qv.GroupSize)
	}
}

// quantizeAny quantizes x once for several matrices that read it.
func (s *State) quantizeAny(qv *QVec, x []float32, ms ...*Mat) {
	for _, m := range ms {
		if m.Type != F32 {
			quantizeFor(qv, x, m)
			return
		}
	}
}

// Forward runs one position and returns the logits (vocab), valid until the
// next call. It computes what llama2.c's forward() computes, step by step.
func (m *Model) Forward(s *State, token, pos int) []float32 {
	c := &m.Config
	w := &m.Weights
	dim, hidden, kvDim, qDim := c.Dim, c.HiddenDim, c.KVDim(), c.QDim()
	hs := c.HeadSize()
	kvMul := c.NHeads / c.NKVHeads
	x := s.x
	if uint(token) >= uint(c.VocabSize) || uint(pos) >= uint(s.MaxSeq) {
		panic(fmt.Sprintf("core: Forward(token %d, pos %d) outside vocab %d / cache %d", token, pos, c.VocabSize, s.MaxSeq))
	}

	// embed
	w.TokenEmbedding.Row(token, x)

	sqrtHS := float32(math.Sqrt(float64(hs)))
	rope := s.rope[pos*hs : pos*hs+hs]
	xb, heads := s.xb[:dim], s.xb[:qDim] // the same buffer unless heads were pruned
	for l := 0; l < c.NLayers; l++ {
		// attention rmsnorm
		rmsnorm(xb, x, w.RmsAtt[l*dim:(l+1)*dim], c.NormEps)

		// qkv, writing k and v straight into the cache
		loff := l * s.MaxSeq * kvDim
		k := s.keyCache[loff+pos*kvDim : loff+(pos+1)*kvDim]
		v := s.valueCache[loff+pos*kvDim : loff+(pos+1)*kvDim]
		s.quantizeAny(s.xq, xb, &w.Wq[l], &w.Wk[l], &w.Wv[l])
		s.matVec(s.q, &w.Wq[l], xb, s.xq)
		s.matVec(k, &w.Wk[l], xb, s.xq)
		s.matVec(v, &w.Wv[l], xb, s.xq)

		// rope: rotate pairs of q (all heads) and k (kv heads)
		ropeRotate(s.q[:qDim], rope)
		ropeRotate(k, rope)

		// attention, head by head
		for h := 0; h < c.NHeads; h++ {
			q := s.q[h*hs : (h+1)*hs]
			att := s.att[h*s.MaxSeq : h*s.MaxSeq+pos+1]
			koff := loff + (h/kvMul)*hs
			attendHead(q, s.keyCache[koff:], s.valueCache[koff:], kvDim, att, heads[h*hs:(h+1)*hs], sqrtHS)
		}

		// output projection and residual
		quantizeFor(s.xq, heads, &w.Wo[l])
		s.matVec(s.xb2, &w.Wo[l], heads, s.xq)
		for i := range x {
			x[i] += s.xb2[i]
		}

		// ffn rmsnorm
		rmsnorm(xb, x, w.RmsFFN[l*dim:(l+1)*dim], c.NormEps)

		// swiglu ffn
		s.quantizeAny(s.xq, xb, &w.W1[l], &w.W3[l])
		s.matVec(s.hb, &w.W1[l], xb, s.xq)
		s.matVec(s.hb2, &w.W3[l], xb, s.xq)
		swiglu(s.hb[:hidden], s.hb2[:hidden])
		quantizeFor(s.hq, s.hb, &w.W2[l])
		s.matVec(xb, &w.W2[l], s.hb, s.hq)
		for i := range x {
			x[i] += xb[i]
		}
	}

	// final rmsnorm and classifier
	rmsnorm(x, x, w.RmsFinal, c.NormEps)
	quantizeFor(s.xq, x, w.Wcls)
	s.matVec(s.logits, w.Wcls, x, s.xq)
	return s.logits
}
