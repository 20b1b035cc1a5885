package core

import (
	"math"
	"math/rand/v2"
	"testing"
)

var toyBertConfig = BertConfig{Dim: 64, HiddenDim: 96, NLayers: 2, NHeads: 4, VocabSize: 50, SeqLen: 20, TypeVocab: 2, NormEps: 1e-12}

// randBert builds an encoder with random weights. Matrices are Q8 in
// groups of 32 (odd layers with Q4_K-style minimums) when quant, F32
// otherwise; the embeddings are F32.
func randBert(seed uint64, c BertConfig, quant bool) *Bert {
	r := rand.New(rand.NewPCG(seed, 1))
	vec := func(n int, scale, bias float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = bias + scale*float32(r.NormFloat64())
		}
		return v
	}
	mat := func(rows, cols int) Mat { return NewMatF32(rows, cols, vec(rows*cols, 0.5, 0)) }
	lin := func(rows, cols int, withMin bool) Linear {
		l := Linear{B: vec(rows, 0.1, 0)}
		if !quant {
			l.W = NewMatF32(rows, cols, vec(rows*cols, float32(1/math.Sqrt(float64(cols))), 0))
			return l
		}
		gs := 32
		gpr := (cols + gs - 1) / gs
		q := make([]int8, rows*cols)
		s := vec(rows*gpr, 0.002, 0.01)
		for i := range q {
			if withMin {
				q[i] = int8(r.IntN(16))
			} else {
				q[i] = int8(r.IntN(255) - 127)
			}
		}
		if withMin {
			for i := range s {
				s[i] *= 8
			}
			l.Min = vec(rows*gpr, 0.01, 0.06)
		}
		l.W = NewMatQ8(rows, cols, gs, q, s)
		return l
	}
	d, h := c.Dim, c.HiddenDim
	m := &Bert{Config: c}
	w := &m.Weights
	w.TokenEmbedding, w.PosEmbedding, w.TypeEmbedding = mat(c.VocabSize, d), mat(c.SeqLen, d), mat(c.TypeVocab, d)
	w.EmbNorm, w.EmbNormB = vec(d, 0.1, 1), vec(d, 0.1, 0)
	w.Layers = make([]BertLayer, c.NLayers)
	for l := range w.Layers {
		odd := l%2 == 1
		w.Layers[l] = BertLayer{
			Wq: lin(d, d, false), Wk: lin(d, d, odd), Wv: lin(d, d, false), Wo: lin(d, d, odd),
			AttNorm: vec(d, 0.1, 1), AttNormB: vec(d, 0.1, 0),
			Up: lin(h, d, false), Down: lin(d, h, odd),
			OutNorm: vec(d, 0.1, 1), OutNormB: vec(d, 0.1, 0),
		}
	}
	return m
}

// dequantized returns a copy of m whose matrices are F32 holding exactly
// the weights m's stand for (W - Min).
func dequantized(m *Bert) *Bert {
	out := *m
	out.ActGroup = 0
	out.Weights.Layers = append([]BertLayer(nil), m.Weights.Layers...)
	for _, nl := range out.Mats() {
		l := nl.Lin
		w := make([]float32, l.W.Rows*l.W.Cols)
		for i := 0; i < l.W.Rows; i++ {
			row := w[i*l.W.Cols : (i+1)*l.W.Cols]
			l.W.Row(i, row)
			if l.Min != nil {
				for j := range row {
					row[j] = float32(float64(row[j]) - float64(l.Min[i*l.W.GroupsPerRow()+j/l.W.GroupSize]))
				}
			}
		}
		*l = Linear{W: NewMatF32(l.W.Rows, l.W.Cols, w), B: l.B}
	}
	return &out
}

// refBert is the specification: BERT's forward pass written plainly in
// float64 over dequantized weights (exact GELU, mean pooling).
func refBert(m *Bert, tokens []int) (hidden [][]float64) {
	c := &m.Config
	w := &m.Weights
	d, hs := c.Dim, c.HeadSize()
	T := len(tokens)
	row := func(mt *Mat, i int) []float64 {
		f := make([]float32, mt.Cols)
		mt.Row(i, f)
		out := make([]float64, len(f))
		for j, v := range f {
			out[j] = float64(v)
		}
		return out
	}
	lin := func(l *Linear, x []float64) []float64 {
		out := make([]float64, l.W.Rows)
		for i := range out {
			wr := row(&l.W, i)
			s := float64(l.B[i])
			for j, v := range x {
				wv := wr[j]
				if l.Min != nil {
					wv -= float64(l.Min[i*l.W.GroupsPerRow()+j/l.W.GroupSize])
				}
				s += wv * v
			}
			out[i] = s
		}
		return out
	}
	ln := func(x []float64, g, b []float32) {
		var mean, vr float64
		for _, v := range x {
			mean += v
		}
		mean /= float64(len(x))
		for _, v := range x {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(len(x))
		for i := range x {
			x[i] = (x[i]-mean)/math.Sqrt(vr+float64(c.NormEps))*float64(g[i]) + float64(b[i])
		}
	}
	x := make([][]float64, T)
	for t, tok := range tokens {
		x[t] = row(&w.TokenEmbedding, tok)
		p, ty := row(&w.PosEmbedding, t), row(&w.TypeEmbedding, 0)
		for i := range x[t] {
			x[t][i] += p[i] + ty[i]
		}
		ln(x[t], w.EmbNorm, w.EmbNormB)
	}
	for l := range w.Layers {
		ly := &w.Layers[l]
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range x {
			q[t], k[t], v[t] = lin(&ly.Wq, x[t]), lin(&ly.Wk, x[t]), lin(&ly.Wv, x[t])
		}
		for i := range x {
			o := make([]float64, d)
			for h := 0; h < c.NHeads; h++ {
				sc := make([]float64, T)
				mx := math.Inf(-1)
				for t := range x {
					for j := h * hs; j < (h+1)*hs; j++ {
						sc[t] += q[i][j] * k[t][j]
					}
					sc[t] /= math.Sqrt(float64(hs))
					mx = max(mx, sc[t])
				}
				var sum float64
				for t := range sc {
					sc[t] = math.Exp(sc[t] - mx)
					sum += sc[t]
				}
				for t := range sc {
					for j := h * hs; j < (h+1)*hs; j++ {
						o[j] += sc[t] / sum * v[t][j]
					}
				}
			}
			a := lin(&ly.Wo, o)
			for j := range a {
				a[j] += x[i][j]
			}
			ln(a, ly.AttNorm, ly.AttNormB)
			u := lin(&ly.Up, a)
			for j, z := range u {
				u[j] = 0.5 * z * (1 + math.Erf(z/math.Sqrt2))
			}
			f := lin(&ly.Down, u)
			for j := range f {
				f[j] += a[j]
			}
			ln(f, ly.OutNorm, ly.OutNormB)
			x[i] = f
		}
	}
	return x
}

func TestBertMatchesSpecification(t *testing.T) {
	tokens := []int{2, 17, 5, 44, 9, 9, 31, 3}
	for _, quant := range []bool{false, true} {
		m := randBert(7, toyBertConfig, quant)
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		want := refBert(m, tokens)
		got := m.Forward(m.NewState(0), tokens)
		d := m.Config.Dim
		var maxErr float64
		for tk := range want {
			for i, v := range want[tk] {
				maxErr = max(maxErr, math.Abs(float64(got[tk*d+i])-v))
			}
		}
		// float32 sums of 64..96 terms, after LayerNorm (unit scale): 1e-4 is
		// ~100x their rounding, and far below a wrong formula (order 0.1-1)
		const tol = 1e-4
		if maxErr > tol {
			t.Errorf("quant=%v: hidden states differ from the float64 specification by %g (tolerance %g)", quant, maxErr, tol)
		}
	}
}

func TestBertMinIsExact(t *testing.T) {
	// Q8 with minimums and float activations computes the dequantized
	// model's product: compare with the same weights as F32
	m := randBert(11, toyBertConfig, true)
	f := dequantized(m)
	tokens := []int{2, 1, 3, 4, 3}
	a := append([]float32(nil), m.Forward(m.NewState(8), tokens)...)
	b := f.Forward(f.NewState(8), tokens)
	var maxErr float64
	for i := range a {
		maxErr = max(maxErr, math.Abs(float64(a[i]-b[i])))
	}
	if maxErr > 1e-4 {
		t.Errorf("Q8+Min vs dequantized F32: max abs difference %g", maxErr)
	}
}

func TestBertIntegerActivations(t *testing.T) {
	m := randBert(3, toyBertConfig, true)
	tokens := []int{2, 10, 20, 30, 40, 3}
	var emb [3][]float32
	for i, ag := range []int{0, 16, 32} {
		m.ActGroup = ag
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		emb[i] = make([]float32, m.Config.Dim)
		m.Embed(m.NewState(0), tokens, emb[i])
	}
	for i := 1; i < 3; i++ {
		if c := Cosine(emb[0], emb[i]); c < 0.999 {
			t.Errorf("int8 activations (group %d) vs float: cosine %.6f", []int{0, 16, 32}[i], c)
		}
	}
	m.ActGroup = 48 // weight groups of 32 neither divide it nor are multiples of it
	if err := m.Validate(); err == nil {
		t.Error("Validate accepted activation groups of 48 with weight groups of 32")
	}
	// under activation groups of 64, matrices with smaller weight groups
	// that divide it (32, and Q6_K's 16) get their inputs in their own groups
	down := &m.Weights.Layers[0].Down
	q := down.W
	q.GroupSize = 16
	q.S = make([]float32, q.Rows*q.GroupsPerRow())
	for i := range q.S {
		q.S[i] = down.W.S[i/2]
	}
	down.W = q
	m.ActGroup = 64
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if m.actGroup(&down.W) != 16 || m.actGroup(&m.Weights.Layers[0].Up.W) != 32 || m.minActGroup() != 16 {
		t.Errorf("activation groups: down %d, up %d, min %d", m.actGroup(&down.W), m.actGroup(&m.Weights.Layers[0].Up.W), m.minActGroup())
	}
	mixed := make([]float32, m.Config.Dim)
	m.Embed(m.NewState(0), tokens, mixed)
	m.ActGroup = 0
	float := make([]float32, m.Config.Dim)
	m.Embed(m.NewState(0), tokens, float)
	if c := Cosine(mixed, float); c < 0.999 {
		t.Errorf("mixed activation groups vs float: cosine %.6f", c)
	}
}

// halves is a BertParallel that runs a job's rows as two spans, in reverse.
type halves struct{ calls int }

func (h *halves) Do(rows int, j *BertJob) {
	h.calls++
	j.Run(rows/2, rows)
	j.Run(0, rows/2)
}

func TestBertStateReuseAndParallel(t *testing.T) {
	c := toyBertConfig
	c.Dim, c.HiddenDim = 256, 320 // big enough for the row splitter (>= 2^16 weights)
	m := randBert(5, c, true)
	m.ActGroup = 16
	long := []int{2, 5, 6, 7, 8, 9, 10, 11, 12, 3}
	short := []int{2, 13, 3}
	s := m.NewState(0)
	m.Forward(s, long)
	reused := append([]float32(nil), m.Forward(s, short)...)
	fresh := m.Forward(m.NewState(len(short)), short)
	ps := m.NewState(0)
	h := &halves{}
	ps.Par = h
	split := m.Forward(ps, short)
	for i := range fresh {
		if math.Float32bits(reused[i]) != math.Float32bits(fresh[i]) || math.Float32bits(split[i]) != math.Float32bits(fresh[i]) {
			t.Fatalf("hidden[%d]: reused state %v, fresh %v, row-split %v", i, reused[i], fresh[i], split[i])
		}
	}
	if h.calls == 0 {
		t.Error("the Parallel hook was never used")
	}
}

func TestDots4I8MatchesRef(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, ga := range []int{16, 32, 48, 64} {
		for _, groups := range []int{1, 2, 3, 5, 12, 24, 96} {
			n := ga * groups
			if n/ga > maxBatchGroups {
				continue
			}
			stride := n + r.IntN(40)
			w := make([]int8, n)
			x := make([]int8, 3*stride+n)
			for i := range w {
				w[i] = int8(r.IntN(256) - 128)
			}
			for i := range x {
				x[i] = int8(r.IntN(256) - 128)
			}
			w[0], x[0] = -128, -128 // the extreme product
			got, want := make([]int32, 4*groups), make([]int32, 4*groups)
			dots4I8Ref(w, x, stride, n, ga, want)
			if batchQ8(n, ga) {
				dots4I8(w, x, stride, n, ga, got)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("ga %d n %d: sum %d (group %d, vector %d) = %d, want %d", ga, n, i, i/4, i%4, got[i], want[i])
					}
				}
			}
		}
	}
}

func TestBertJobBatchedBits(t *testing.T) {
	// the four-token kernel path gives the per-token kernels' bits
	r := rand.New(rand.NewPCG(4, 5))
	for _, c := range []struct{ rows, cols, gw, ga int }{{40, 64, 32, 32}, {33, 96, 32, 16}, {20, 384, 16, 16}, {17, 128, 64, 32}, {9, 80, 80, 16}} {
		tokens := 7
		w := NewMatQ8(c.rows, c.cols, c.gw, make([]int8, c.rows*c.cols), make([]float32, c.rows*((c.cols+c.gw-1)/c.gw)))
		for i := range w.Q {
			w.Q[i] = int8(r.IntN(255) - 127)
		}
		for i := range w.S {
			w.S[i] = float32(r.Float64())
		}
		in := make([]float32, tokens*c.cols)
		for i := range in {
			in[i] = float32(r.NormFloat64())
		}
		q := newQBatch(tokens, c.cols, c.ga)
		q.quantize(in, tokens, c.ga)
		out := make([]float32, tokens*c.rows)
		j := BertJob{out: out, w: &w, in: in, inq: &q, tokens: tokens}
		j.Run(0, c.rows)
		for tk := 0; tk < tokens; tk++ {
			want := make([]float32, c.rows)
			matVecQ8Ref(want, w.Q, w.S, q.q[tk*c.cols:(tk+1)*c.cols], q.s[tk*q.gpr:(tk+1)*q.gpr], c.cols, c.gw, c.ga, 0, c.rows)
			for i, v := range want {
				if math.Float32bits(v) != math.Float32bits(out[tk*c.rows+i]) {
					t.Fatalf("%+v token %d row %d: %v, the specification %v", c, tk, i, out[tk*c.rows+i], v)
				}
			}
		}
	}
}

func TestBertForwardAllocs(t *testing.T) {
	m := randBert(9, toyBertConfig, true)
	m.ActGroup = 16
	s := m.NewState(0)
	tokens := []int{2, 7, 8, 3}
	out := make([]float32, m.Config.Dim)
	if n := testing.AllocsPerRun(5, func() { m.Embed(s, tokens, out) }); n != 0 {
		t.Errorf("Embed allocates %v times per call", n)
	}
}

func TestBertEmbedNormalized(t *testing.T) {
	m := randBert(13, toyBertConfig, false)
	out := make([]float32, m.Config.Dim)
	tokens := []int{2, 4, 6, 3}
	norm := m.Embed(m.NewState(0), tokens, out)
	var ss float64
	for _, v := range out {
		ss += float64(v) * float64(v)
	}
	if math.Abs(ss-1) > 1e-6 || norm <= 0 {
		t.Errorf("|embedding|^2 = %v, norm before %v", ss, norm)
	}
	// the embedding is the normalized mean of the hidden states
	hid := refBert(m, tokens)
	mean := make([]float32, m.Config.Dim)
	for i := range mean {
		for _, h := range hid {
			mean[i] += float32(h[i] / float64(len(hid)))
		}
	}
	if c := Cosine(out, mean); c < 0.99999 {
		t.Errorf("embedding vs normalized mean of the specification's hidden states: cosine %v", c)
	}
	if c := Cosine(out, out); math.Abs(c-1) > 1e-12 {
		t.Errorf("Cosine(v, v) = %v", c)
	}
	if Cosine(out, make([]float32, len(out))) != 0 {
		t.Error("Cosine with a zero vector is not 0")
	}
}

func TestBertValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		break_ func(m *Bert)
	}{
		{"heads", func(m *Bert) { m.Config.NHeads = 5 }},
		{"eps", func(m *Bert) { m.Config.NormEps = 0 }},
		{"types", func(m *Bert) { m.Config.TypeVocab = 0 }},
		{"layers", func(m *Bert) { m.Weights.Layers = m.Weights.Layers[:1] }},
		{"bias", func(m *Bert) { m.Weights.Layers[0].Wq.B = m.Weights.Layers[0].Wq.B[:3] }},
		{"min", func(m *Bert) { m.Weights.Layers[1].Wk.Min = m.Weights.Layers[1].Wk.Min[:1] }},
		{"pos", func(m *Bert) { m.Weights.PosEmbedding.Rows-- }},
		{"norm", func(m *Bert) { m.Weights.Layers[1].OutNormB = nil }},
		{"shape", func(m *Bert) { m.Weights.Layers[0].Up.W.Rows = 3 }},
		{"act", func(m *Bert) { m.ActGroup = -1 }},
	} {
		m := randBert(1, toyBertConfig, true)
		c.break_(m)
		if err := m.Validate(); err == nil {
			t.Errorf("%s: Validate accepted a broken model", c.name)
		}
	}
}

func BenchmarkBertEmbed(b *testing.B) {
	// the shape of all-MiniLM-L6-v2 with random Q8 weights, a 12-token text
	c := BertConfig{Dim: 384, HiddenDim: 1536, NLayers: 6, NHeads: 12, VocabSize: 1000, SeqLen: 128, TypeVocab: 2, NormEps: 1e-12}
	m := randBert(1, c, true)
	m.ActGroup = 16
	tokens := make([]int, 12)
	for i := range tokens {
		tokens[i] = i * 7
	}
	s := m.NewState(0)
	out := make([]float32, c.Dim)
	b.ReportAllocs()
	for b.Loop() {
		m.Embed(s, tokens, out)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emb/s")
}
