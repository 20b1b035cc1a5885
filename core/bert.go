package core

import (
	"fmt"
	"math"
)

// The BERT encoder (sentence-transformers' all-MiniLM-L6-v2 and its kin),
// beside the llama decoder and on the same kernels: token, position and
// token-type embeddings, a LayerNorm, then post-LayerNorm layers of
// bidirectional attention and a GELU FFN, every matrix with a bias; the
// sentence embedding is the mean of the last hidden states over all tokens
// ([CLS] and [SEP] included), L2-normalized.
//
// All tokens of a text go through each matrix together (layer by layer,
// matrix by matrix), so that a matrix is read from memory once per text
// rather than once per token. Arithmetic is deterministic and the same in
// every build: the matrix products are the kernels' (bit-identical fast and
// plain variants), LayerNorm and GELU run in float64 with every product
// rounded explicitly (no FMA fusion), the softmax uses core's expf.

// BertConfig is a BERT encoder's shape.
type BertConfig struct {
	Dim       int // hidden width
	HiddenDim int // FFN width
	NLayers   int
	NHeads    int
	VocabSize int
	SeqLen    int     // positions (learned position embeddings): the longest input
	TypeVocab int     // token types (segment embeddings); mote uses type 0
	NormEps   float32 // LayerNorm epsilon
}

// HeadSize is the width of one attention head.
func (c *BertConfig) HeadSize() int { return c.Dim / c.NHeads }

// NumWeights counts the parameters: matrices, biases and norms.
func (c *BertConfig) NumWeights() int64 {
	d, h, l := int64(c.Dim), int64(c.HiddenDim), int64(c.NLayers)
	emb := (int64(c.VocabSize)+int64(c.SeqLen)+int64(c.TypeVocab))*d + 2*d
	layer := 4*d*d + 4*d + 2*d*h + h + d + 4*d
	return emb + l*layer
}

// Validate checks that the shape is possible and inside core's limits.
func (c *BertConfig) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, a...)...)
	}
	switch {
	case c.Dim <= 0 || c.Dim > MaxDim:
		return bad("dim %d outside 1..%d", c.Dim, MaxDim)
	case c.HiddenDim <= 0 || c.HiddenDim > 8*MaxDim:
		return bad("hidden_dim %d outside 1..%d", c.HiddenDim, 8*MaxDim)
	case c.NLayers <= 0 || c.NLayers > MaxLayers:
		return bad("n_layers %d outside 1..%d", c.NLayers, MaxLayers)
	case c.NHeads <= 0 || c.NHeads > MaxHeads:
		return bad("n_heads %d outside 1..%d", c.NHeads, MaxHeads)
	case c.Dim%c.NHeads != 0:
		return bad("dim %d is not a multiple of n_heads %d", c.Dim, c.NHeads)
	case c.VocabSize <= 0 || c.VocabSize > MaxVocab:
		return bad("vocab_size %d outside 1..%d", c.VocabSize, MaxVocab)
	case c.SeqLen <= 0 || c.SeqLen > MaxBertSeq:
		return bad("seq_len %d outside 1..%d", c.SeqLen, MaxBertSeq)
	case c.TypeVocab <= 0 || c.TypeVocab > MaxBertTypes:
		return bad("token types %d outside 1..%d", c.TypeVocab, MaxBertTypes)
	case !(c.NormEps > 0 && c.NormEps < 1):
		return bad("norm epsilon %g outside (0, 1)", c.NormEps)
	}
	if n := c.NumWeights(); n > MaxWeights {
		return bad("%d parameters, more than the limit %d", n, int64(MaxWeights))
	}
	return nil
}

// Limits of the encoder's shape beyond the decoder's: attention over all
// positions at once is quadratic in them.
const (
	MaxBertSeq   = 1 << 14
	MaxBertTypes = 1 << 10
)

// Linear is y = W x + B. Min, when not nil, makes the weights asymmetric:
// weight[i][j] = W[i][j] - Min[i][j/W.GroupSize], which is how GGUF's Q4_K
// blocks are held exactly (values 0..15 times a scale, minus a minimum per
// group of 32): the product is then W x minus, per output, Min's row dotted
// with the input's group sums.
type Linear struct {
	W   Mat       // (rows, cols)
	Min []float32 // (rows, groupsPerRow) or nil
	B   []float32 // (rows)
}

// BertLayer is one post-LayerNorm encoder layer.
type BertLayer struct {
	Wq, Wk, Wv, Wo    Linear    // (dim, dim)
	AttNorm, AttNormB []float32 // (dim) LayerNorm weight and bias after attention
	Up                Linear    // (hidden, dim)
	Down              Linear    // (dim, hidden)
	OutNorm, OutNormB []float32 // (dim) LayerNorm weight and bias after the FFN
}

// BertWeights are an encoder's parameters.
type BertWeights struct {
	TokenEmbedding    Mat       // (vocab, dim)
	PosEmbedding      Mat       // (seqLen, dim)
	TypeEmbedding     Mat       // (types, dim)
	EmbNorm, EmbNormB []float32 // (dim)
	Layers            []BertLayer
}

// Bert is a loaded encoder: shape, weights and tokenizer.
type Bert struct {
	Config    BertConfig
	Weights   BertWeights
	Tokenizer *WordPiece

	// ActGroup is the group size in which a quantized matrix's input is
	// quantized to int8 (integer kernels); 0 keeps inputs in float32. A
	// matrix whose weight groups are smaller (GGUF's Q6_K: 16) and divide it
	// gets its inputs in groups of its own size instead; otherwise a
	// quantized matrix's GroupSize must be a multiple of it or cover its row.
	ActGroup int
}

// Mats lists every matrix (not the embeddings) with a name, in layer order:
// what quantizers and writers walk.
func (m *Bert) Mats() []NamedLinear {
	var out []NamedLinear
	for l := range m.Weights.Layers {
		ly := &m.Weights.Layers[l]
		for _, x := range []struct {
			name string
			lin  *Linear
		}{{"attn_q", &ly.Wq}, {"attn_k", &ly.Wk}, {"attn_v", &ly.Wv}, {"attn_output", &ly.Wo},
			{"ffn_up", &ly.Up}, {"ffn_down", &ly.Down}} {
			out = append(out, NamedLinear{Name: x.name, Layer: l, Lin: x.lin})
		}
	}
	return out
}

// NamedLinear is one of an encoder's matrices with its GGUF name (without
// the "blk.N." prefix and ".weight" suffix) and layer.
type NamedLinear struct {
	Name  string
	Layer int
	Lin   *Linear
}

// Validate checks every tensor against the config. Loaders call it once, so
// that Forward may index without further checks.
func (m *Bert) Validate() error {
	c := &m.Config
	if err := c.Validate(); err != nil {
		return err
	}
	w := &m.Weights
	d, h := c.Dim, c.HiddenDim
	mat := func(name string, mt *Mat, rows, cols int) error {
		if mt.Rows != rows || mt.Cols != cols {
			return fmt.Errorf("%w: %s is %dx%d, want %dx%d", ErrBadConfig, name, mt.Rows, mt.Cols, rows, cols)
		}
		if err := mt.Check(); err != nil {
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
	lin := func(name string, ln *Linear, rows, cols int) error {
		if err := mat(name, &ln.W, rows, cols); err != nil {
			return err
		}
		if err := vec(name+" bias", ln.B, rows); err != nil {
			return err
		}
		if ln.Min != nil {
			if ln.W.Type == F32 {
				return fmt.Errorf("%w: %s: an f32 matrix with minimums", ErrBadConfig, name)
			}
			if err := vec(name+" minimums", ln.Min, rows*ln.W.GroupsPerRow()); err != nil {
				return err
			}
		}
		if g := m.ActGroup; g > 0 && ln.W.Type != F32 && ln.W.GroupSize%g != 0 && ln.W.GroupSize < cols && g%ln.W.GroupSize != 0 {
			return fmt.Errorf("%w: %s has weight groups of %d, neither a multiple nor a divisor of the activation group %d",
				ErrBadConfig, name, ln.W.GroupSize, g)
		}
		return nil
	}
	for _, e := range []error{
		mat("token embedding", &w.TokenEmbedding, c.VocabSize, d),
		mat("position embedding", &w.PosEmbedding, c.SeqLen, d),
		mat("token type embedding", &w.TypeEmbedding, c.TypeVocab, d),
		vec("embedding norm", w.EmbNorm, d), vec("embedding norm bias", w.EmbNormB, d),
	} {
		if e != nil {
			return e
		}
	}
	if len(w.Layers) != c.NLayers {
		return fmt.Errorf("%w: %d layers of weights, config says %d", ErrBadConfig, len(w.Layers), c.NLayers)
	}
	if m.ActGroup < 0 || m.ActGroup > 8*MaxDim {
		return fmt.Errorf("%w: activation group %d", ErrBadConfig, m.ActGroup)
	}
	for l := range w.Layers {
		ly := &w.Layers[l]
		p := fmt.Sprintf("layer %d ", l)
		for _, e := range []error{
			lin(p+"wq", &ly.Wq, d, d), lin(p+"wk", &ly.Wk, d, d), lin(p+"wv", &ly.Wv, d, d), lin(p+"wo", &ly.Wo, d, d),
			lin(p+"ffn up", &ly.Up, h, d), lin(p+"ffn down", &ly.Down, d, h),
			vec(p+"attention norm", ly.AttNorm, d), vec(p+"attention norm bias", ly.AttNormB, d),
			vec(p+"output norm", ly.OutNorm, d), vec(p+"output norm bias", ly.OutNormB, d),
		} {
			if e != nil {
				return e
			}
		}
	}
	if t := m.Tokenizer; t != nil && len(t.Vocab) != c.VocabSize {
		return fmt.Errorf("%w: tokenizer has %d tokens, model %d", ErrBadConfig, len(t.Vocab), c.VocabSize)
	}
	return nil
}

// BertState is the scratch memory of encoding texts of up to MaxTokens
// tokens. All buffers are allocated once; Forward allocates nothing.
type BertState struct {
	x   []float32 // residual stream (tokens, dim)
	xb  []float32 // attention output, then the FFN's (tokens, dim)
	q   []float32 // queries, then the attention projection (tokens, dim)
	k   []float32 // keys (tokens, dim)
	v   []float32 // values (tokens, dim)
	hb  []float32 // FFN hidden (tokens, hidden)
	att []float32 // one query's attention (tokens)
	gs  []float32 // group sums of one input, for Linear.Min (groups)
	mc  []float32 // the Min correction of one output (rows)

	xq, hq qBatch // quantized x/xb (tokens, dim) and hb (tokens, hidden); unused for float activations
	job    BertJob

	MaxTokens int
	Par       BertParallel // optional row splitter for big matrices (native callers)
}

// BertParallel splits an encoder's matrix products across cores, as
// Parallel does the decoder's; nil means run on the caller. Implementations
// live outside core (core starts no goroutines).
type BertParallel interface {
	Do(rows int, job *BertJob)
}

// BertJob is one matrix times the vectors of every token, split by rows:
// out[t] = W in[t] for rows r0..r1-1 of each token t. A native caller may
// run Run on disjoint row ranges from several goroutines.
type BertJob struct {
	out    []float32 // (tokens, rows)
	w      *Mat
	in     []float32 // (tokens, cols)
	inq    *qBatch   // in quantized, or nil for float activations
	tokens int
}

// maxBatchGroups bounds the activation groups of a row that the batched
// kernel's group sums (kept on the stack) may have.
const maxBatchGroups = 256

// Run computes rows r0..r1-1 for every token. Q8 weights with int8
// activations in groups of a multiple of 16 go four tokens at a time
// through one weight row (dots4I8: the row is widened once for four
// vectors, and their group sums reduced together), the rest one token at
// a time through the decoder's kernels; both give the bits of
// matVecQ8Ref, since integer sums are exact and the float terms are added
// in the same order.
func (j *BertJob) Run(r0, r1 int) {
	w := j.w
	rows, n := w.Rows, w.Cols
	t := 0
	if q := j.inq; q != nil && w.Type == Q8 && batchQ8(n, q.gs) {
		var buf [4 * maxBatchGroups]int32
		nga := n / q.gs
		isums := buf[:4*nga]
		gpr := w.GroupsPerRow()
		for ; t+4 <= j.tokens; t += 4 {
			x := q.q[t*n : (t+4)*n]
			xs0, xs1 := q.s[t*q.gpr:(t+1)*q.gpr], q.s[(t+1)*q.gpr:(t+2)*q.gpr]
			xs2, xs3 := q.s[(t+2)*q.gpr:(t+3)*q.gpr], q.s[(t+3)*q.gpr:(t+4)*q.gpr]
			for i := r0; i < r1; i++ {
				dots4I8(w.Q[i*n:(i+1)*n], x, n, n, q.gs, isums)
				rs := w.S[i*gpr : (i+1)*gpr]
				o := j.out[t*rows+i:]
				if w.GroupSize == q.gs {
					o[0], o[rows], o[2*rows], o[3*rows] = combine4(isums, xs0, xs1, xs2, xs3, rs)
					continue
				}
				for k, xs := range [4][]float32{xs0, xs1, xs2, xs3} {
					o[k*rows] = combineBatch(isums, k, xs, rs, n, w.GroupSize, q.gs)
				}
			}
		}
	}
	for ; t < j.tokens; t++ {
		mv := MatVecJob{Out: j.out[t*rows : (t+1)*rows], W: w, X: j.in[t*n : (t+1)*n]}
		var qv QVec
		if q := j.inq; q != nil {
			qv = QVec{Q: q.q[t*n : (t+1)*n], S: q.s[t*q.gpr : (t+1)*q.gpr], GroupSize: q.gs}
			mv.XQ = &qv
		}
		mv.Run(r0, r1)
	}
}

// combineBatch applies the scales to vector k's activation-group sums
// (isums[4a+k]) in the order matVecQ8Ref adds them.
func combineBatch(isums []int32, k int, xs, rs []float32, n, gw, ga int) float32 {
	var val float32
	a := 0 // activation group
	for g, j0 := 0, 0; g < len(rs); g, j0 = g+1, j0+gw {
		j1 := min(j0+gw, n)
		var acc float32
		for a0 := j0; a0 < j1; a0, a = a0+ga, a+1 {
			acc += float32(float32(isums[4*a+k]) * xs[a])
		}
		val += float32(acc * rs[g])
	}
	return val
}

// combine4 is combineBatch for weight groups equal to the activation
// groups (GGUF's blocks), for the four vectors at once: four independent
// chains of float32 sums, each in matVecQ8Ref's order (an activation group
// is then its weight group's only term, and 0 + x is x). Measured on
// all-MiniLM-L6-v2 (128 tokens, amd64, loaded 2-core VM): the combination
// took 2.4x the time of the integer dot products before, ~0.6x after.
func combine4(isums []int32, xs0, xs1, xs2, xs3, rs []float32) (v0, v1, v2, v3 float32) {
	isums = isums[:4*len(rs)]
	xs0, xs1, xs2, xs3 = xs0[:len(rs)], xs1[:len(rs)], xs2[:len(rs)], xs3[:len(rs)]
	for g, r := range rs {
		s := isums[4*g : 4*g+4]
		v0 += float32(float32(float32(s[0])*xs0[g]) * r)
		v1 += float32(float32(float32(s[1])*xs1[g]) * r)
		v2 += float32(float32(float32(s[2])*xs2[g]) * r)
		v3 += float32(float32(float32(s[3])*xs3[g]) * r)
	}
	return
}

// dots4I8Ref is the plain specification of dots4I8.
func dots4I8Ref(w, x []int8, xstride, n, ga int, isums []int32) {
	for a := 0; a < n/ga; a++ {
		for k := 0; k < 4; k++ {
			isums[4*a+k] = dotI8(w[a*ga:(a+1)*ga], x[k*xstride+a*ga:k*xstride+(a+1)*ga])
		}
	}
}

// qBatch holds the int8 copies of several tokens' vectors of n values, in
// groups of gs; valid until the vectors change.
type qBatch struct {
	q     []int8    // (tokens, n)
	s     []float32 // (tokens, groups), room for the smallest group size
	n     int
	gpr   int
	gs    int
	valid bool
}

// NewState allocates scratch memory for texts of up to maxTokens tokens
// (maxTokens <= 0 or > SeqLen means SeqLen).
func (m *Bert) NewState(maxTokens int) *BertState {
	c := &m.Config
	if maxTokens <= 0 || maxTokens > c.SeqLen {
		maxTokens = c.SeqLen
	}
	T, d, h := maxTokens, c.Dim, c.HiddenDim
	s := &BertState{
		x: make([]float32, T*d), xb: make([]float32, T*d), q: make([]float32, T*d),
		k: make([]float32, T*d), v: make([]float32, T*d), hb: make([]float32, T*h),
		att: make([]float32, T), gs: make([]float32, max(d, h)), mc: make([]float32, max(d, h)),
		MaxTokens: T,
	}
	if g := m.minActGroup(); g > 0 {
		s.xq = newQBatch(T, d, g)
		s.hq = newQBatch(T, h, g)
	}
	return s
}

// actGroup is the group size of a matrix's int8 inputs, 0 for float ones.
func (m *Bert) actGroup(w *Mat) int {
	g := m.ActGroup
	switch {
	case g == 0 || w.Type == F32:
		return 0
	case w.GroupSize%g == 0 || w.GroupSize >= w.Cols:
		return g
	}
	return w.GroupSize // Validate: it divides g
}

// minActGroup is the smallest activation group of any matrix (0: none).
func (m *Bert) minActGroup() int {
	g := 0
	for _, nl := range m.Mats() {
		if a := m.actGroup(&nl.Lin.W); a > 0 && (g == 0 || a < g) {
			g = a
		}
	}
	return g
}

func newQBatch(tokens, n, minGS int) qBatch {
	gpr := (n + minGS - 1) / minGS
	return qBatch{q: make([]int8, tokens*n), s: make([]float32, tokens*gpr), n: n}
}

// quantize fills the first tokens rows of b from x (tokens, n) in groups of gs.
func (b *qBatch) quantize(x []float32, tokens, gs int) {
	b.gs, b.gpr, b.valid = gs, (b.n+gs-1)/gs, true
	for t := 0; t < tokens; t++ {
		quantizeQ8Fast(b.q[t*b.n:(t+1)*b.n], b.s[t*b.gpr:(t+1)*b.gpr], x[t*b.n:(t+1)*b.n], gs)
	}
}

// Forward runs the encoder over tokens (ids, [CLS] and [SEP] included) and
// returns the last hidden states (tokens, dim), valid until the next call.
func (m *Bert) Forward(s *BertState, tokens []int) []float32 {
	c := &m.Config
	w := &m.Weights
	T, d, h := len(tokens), c.Dim, c.HiddenDim
	hs := c.HeadSize()
	if T == 0 || T > s.MaxTokens || T > c.SeqLen {
		panic(fmt.Sprintf("core: Bert.Forward of %d tokens, state holds %d, model %d", T, s.MaxTokens, c.SeqLen))
	}
	x := s.x[:T*d]

	// embed: token + position + type 0, then LayerNorm
	for t, tok := range tokens {
		if uint(tok) >= uint(c.VocabSize) {
			panic(fmt.Sprintf("core: Bert.Forward: token %d outside vocab %d", tok, c.VocabSize))
		}
		xt := x[t*d : (t+1)*d]
		w.TokenEmbedding.Row(tok, xt)
		w.PosEmbedding.Row(t, s.xb[:d])
		for i := range xt {
			xt[i] += s.xb[i]
		}
		w.TypeEmbedding.Row(0, s.xb[:d])
		for i := range xt {
			xt[i] += s.xb[i]
		}
		layerNorm(xt, xt, w.EmbNorm, w.EmbNormB, c.NormEps)
	}

	sqrtHS := float32(math.Sqrt(float64(hs)))
	for l := range w.Layers {
		ly := &w.Layers[l]

		// qkv
		s.xq.valid = false
		m.linear(s, s.q, &ly.Wq, x, &s.xq, T)
		m.linear(s, s.k, &ly.Wk, x, &s.xq, T)
		m.linear(s, s.v, &ly.Wv, x, &s.xq, T)

		// attention: every query over every position, head by head
		att := s.att[:T]
		for hd := 0; hd < c.NHeads; hd++ {
			k, v := s.k[hd*hs:(T-1)*d+(hd+1)*hs], s.v[hd*hs:(T-1)*d+(hd+1)*hs]
			for i := 0; i < T; i++ {
				attendHead(s.q[i*d+hd*hs:i*d+(hd+1)*hs], k, v, d, att, s.xb[i*d+hd*hs:i*d+(hd+1)*hs], sqrtHS)
			}
		}

		// output projection, residual, LayerNorm
		s.xq.valid = false
		m.linear(s, s.q, &ly.Wo, s.xb, &s.xq, T)
		for t := 0; t < T; t++ {
			xt := x[t*d : (t+1)*d]
			o := s.q[t*d : (t+1)*d]
			for i := range xt {
				xt[i] += o[i]
			}
			layerNorm(xt, xt, ly.AttNorm, ly.AttNormB, c.NormEps)
		}

		// gelu ffn, residual, LayerNorm
		s.xq.valid = false
		m.linear(s, s.hb, &ly.Up, x, &s.xq, T)
		hb := s.hb[:T*h]
		for i, v := range hb {
			hb[i] = gelu(v)
		}
		s.hq.valid = false
		m.linear(s, s.xb, &ly.Down, hb, &s.hq, T)
		for t := 0; t < T; t++ {
			xt := x[t*d : (t+1)*d]
			o := s.xb[t*d : (t+1)*d]
			for i := range xt {
				xt[i] += o[i]
			}
			layerNorm(xt, xt, ly.OutNorm, ly.OutNormB, c.NormEps)
		}
	}
	return x
}

// linear computes out[t] = lin(in[t]) for the first tokens rows. inq holds
// the rows quantized, made (again) when it is not valid for lin's
// activation group.
func (m *Bert) linear(s *BertState, out []float32, lin *Linear, in []float32, inq *qBatch, tokens int) {
	wm := &lin.W
	rows, cols := wm.Rows, wm.Cols
	ga := m.actGroup(wm)
	if ga > 0 && (!inq.valid || inq.gs != ga) {
		inq.quantize(in, tokens, ga)
	}
	j := &s.job
	*j = BertJob{out: out, w: wm, in: in, tokens: tokens}
	if ga > 0 {
		j.inq = inq
	}
	if s.Par != nil && rows*cols*tokens >= 1<<17 {
		s.Par.Do(rows, j)
	} else {
		j.Run(0, rows)
	}
	for t := 0; t < tokens; t++ {
		o := out[t*rows : (t+1)*rows]
		x := in[t*cols : (t+1)*cols]
		if lin.Min != nil {
			// the asymmetric part: Σ_g Min[i][g] · (Σ_{j in g} x_j)
			gsz := wm.GroupSize
			gpr := wm.GroupsPerRow()
			gs := s.gs[:gpr]
			for g := range gs {
				var sum float32
				for _, v := range x[g*gsz : min((g+1)*gsz, cols)] {
					sum += v
				}
				gs[g] = sum
			}
			mc := s.mc[:rows]
			matVecF32Fast(mc, lin.Min, gs, gpr, 0, rows)
			for i := range o {
				o[i] -= mc[i]
			}
		}
		for i, b := range lin.B {
			o[i] += b
		}
	}
}

// Embed encodes tokens and writes their sentence embedding to out (dim):
// the mean of the last hidden states, L2-normalized. It returns the mean's
// L2 norm before normalization.
func (m *Bert) Embed(s *BertState, tokens []int, out []float32) float32 {
	d := m.Config.Dim
	hid := m.Forward(s, tokens)
	out = out[:d]
	T := len(tokens)
	for i := range out {
		var sum float64
		for t := 0; t < T; t++ {
			sum += float64(hid[t*d+i])
		}
		out[i] = float32(sum / float64(T))
	}
	return Normalize(out)
}

// Normalize scales v to unit L2 norm (leaving a zero vector as it is) and
// returns its norm before.
func Normalize(v []float32) float32 {
	var ss float64
	for _, x := range v {
		ss += float64(float64(x) * float64(x))
	}
	n := math.Sqrt(ss)
	if n > 0 {
		for i, x := range v {
			v[i] = float32(float64(x) / n)
		}
	}
	return float32(n)
}

// Cosine is the cosine similarity of two vectors of equal length, in float64.
func Cosine(a, b []float32) float64 {
	b = b[:len(a)]
	var ab, aa, bb float64
	for i, x := range a {
		y := float64(b[i])
		ab += float64(float64(x) * y)
		aa += float64(float64(x) * float64(x))
		bb += float64(y * y)
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// layerNorm writes o = (x - mean) / sqrt(var + eps) * w + b, with the
// statistics in float64.
func layerNorm(o, x, w, b []float32, eps float32) {
	n := float64(len(x))
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / n
	var ss float64
	for _, v := range x {
		dv := float64(v) - mean
		ss += float64(dv * dv)
	}
	inv := 1 / math.Sqrt(ss/n+float64(eps))
	w, b, o = w[:len(x)], b[:len(x)], o[:len(x)]
	for j, v := range x {
		o[j] = float32(float32(float64(float64(v)-mean)*inv)*w[j]) + b[j]
	}
}

// gelu is the exact (erf) GELU that BERT was trained with:
// x/2 · (1 + erf(x/√2)). (llama.cpp uses the tanh approximation.)
func gelu(x float32) float32 {
	xd := float64(x)
	return float32(float64(0.5*xd) * float64(1+math.Erf(float64(xd*(1/math.Sqrt2)))))
}
