package quant

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"mote/core"
)

// Calibration defaults: when no text is given the model writes its own
// calibration data, CalibSeqs sequences of CalibLen tokens after BOS,
// sampled at temperature 1 from the full distribution with llama2.c's
// seeded generator.
const (
	CalibSeqs = 64
	CalibLen  = 256
	CalibSeed = 20240615
)

// Gram is E[x xᵀ] of one matrix input over the calibration tokens
// (cols x cols, float64, row-major). Its diagonal is the importance of each
// input column: the mean squared activation that multiplies it.
type Gram struct {
	N int
	H []float64
}

func newGram(n int) *Gram { return &Gram{N: n, H: make([]float64, n*n)} }

// add accumulates x xᵀ (the upper triangle; mirror fills the rest).
func (g *Gram) add(x []float32) {
	n := g.N
	x = x[:n]
	for i, xi := range x {
		if xi == 0 {
			continue
		}
		row := g.H[i*n : i*n+n]
		fi := float64(xi)
		for j := i; j < n; j++ {
			row[j] += fi * float64(x[j])
		}
	}
}

func (g *Gram) addGram(o *Gram) {
	for i, v := range o.H {
		g.H[i] += v
	}
}

// finish mirrors the upper triangle and divides by the token count.
func (g *Gram) finish(tokens int) {
	n := g.N
	inv := 1 / float64(max(tokens, 1))
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			v := g.H[i*n+j] * inv
			g.H[i*n+j], g.H[j*n+i] = v, v
		}
	}
}

// Diag is the importance vector (mean squared activation per column).
func (g *Gram) Diag() []float64 {
	d := make([]float64, g.N)
	for i := range d {
		d[i] = g.H[i*g.N+i]
	}
	return d
}

// Calibration holds the Gram matrices of every matrix input of a model.
type Calibration struct {
	Tokens  int
	AttIn   []*Gram // (layer) input of wq, wk, wv: the attention rmsnorm output (dim)
	AttOut  []*Gram // (layer) input of wo: the heads' outputs (n_heads x head size: dim unless heads were pruned)
	FFNIn   []*Gram // (layer) input of w1, w3: the ffn rmsnorm output (dim)
	FFNHid  []*Gram // (layer) input of w2: silu(w1 x) * w3 x (hidden)
	Final   *Gram   // input of the classifier: the final rmsnorm output (dim)
	TokFreq []float64
}

func newCalibration(c *core.Config) *Calibration {
	l := c.NLayers
	cal := &Calibration{AttIn: make([]*Gram, l), AttOut: make([]*Gram, l), FFNIn: make([]*Gram, l),
		FFNHid: make([]*Gram, l), Final: newGram(c.Dim), TokFreq: make([]float64, c.VocabSize)}
	for i := 0; i < l; i++ {
		cal.AttIn[i], cal.AttOut[i] = newGram(c.Dim), newGram(c.QDim())
		cal.FFNIn[i], cal.FFNHid[i] = newGram(c.Dim), newGram(c.HiddenDim)
	}
	return cal
}

func (cal *Calibration) grams() []*Gram {
	all := append(append(append(append([]*Gram{}, cal.AttIn...), cal.AttOut...), cal.FFNIn...), cal.FFNHid...)
	return append(all, cal.Final)
}

// Calibrate runs the sequences through m (each from position 0, on all
// cores) and returns the mean Gram matrix of every matrix input. The
// result does not depend on the number of cores.
func Calibrate(m *core.Model, seqs [][]int) (*Calibration, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("%w: no calibration sequences", ErrQuant)
	}
	for _, s := range seqs {
		if len(s) > m.Config.SeqLen {
			return nil, fmt.Errorf("%w: calibration sequence of %d tokens exceeds the context of %d", ErrQuant, len(s), m.Config.SeqLen)
		}
		for _, t := range s {
			if uint(t) >= uint(m.Config.VocabSize) {
				return nil, fmt.Errorf("%w: calibration token %d outside the vocabulary", ErrQuant, t)
			}
		}
	}
	fm := newFloatModel(m)
	// one accumulator per worker would make the sums depend on scheduling;
	// one per sequence keeps them fixed (they are small).
	per := make([]*Calibration, len(seqs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(seqs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(seqs) {
					return
				}
				per[i] = newCalibration(&m.Config)
				fm.run(seqs[i], per[i], nil)
			}
		}()
	}
	wg.Wait()
	cal := newCalibration(&m.Config)
	for _, o := range per {
		cal.Tokens += o.Tokens
		for i, g := range cal.grams() {
			g.addGram(o.grams()[i])
		}
		for i, v := range o.TokFreq {
			cal.TokFreq[i] += v
		}
	}
	for _, g := range cal.grams() {
		g.finish(cal.Tokens)
	}
	for i := range cal.TokFreq {
		cal.TokFreq[i] /= float64(cal.Tokens)
	}
	return cal, nil
}

// SelfCalibration has the model write its own calibration data: n sequences
// of BOS and length sampled tokens, at temperature 1 from the full
// distribution, seeded (the same model and seed give the same tokens). A
// sampled BOS is fed back like any token: stories follow one another.
func SelfCalibration(m *core.Model, n, length int, seed uint64) [][]int {
	length = min(length, m.Config.SeqLen-1)
	bos := 1
	if m.Tokenizer != nil {
		bos = m.Tokenizer.BOS
	}
	seqs := make([][]int, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := m.NewState(length + 1)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				// one generator per sequence, so that the tokens do not
				// depend on which worker ran it
				smp := core.NewSampler(m.Config.VocabSize, 1, 1, seed+uint64(i)*0x9e3779b97f4a7c15)
				seq := make([]int, length+1)
				seq[0] = bos
				for pos := 0; pos < length; pos++ {
					seq[pos+1] = smp.Sample(m.Forward(s, seq[pos], pos))
				}
				seqs[i] = seq
			}
		}()
	}
	wg.Wait()
	return seqs
}

// TextCalibration cuts a calibration text into sequences of BOS and up to
// length tokens: the <|endoftext|>-separated documents, stripped and encoded
// one after another, at most maxSeqs sequences.
func TextCalibration(tok *core.Tokenizer, text string, length, maxSeqs int) ([][]int, error) {
	var stream []int
	for _, doc := range strings.Split(text, DocSeparator) {
		if doc = strings.TrimSpace(doc); doc != "" {
			stream = append(stream, tok.Encode(doc, false, false)...)
			if len(stream) >= length*maxSeqs {
				break
			}
		}
	}
	var seqs [][]int
	for len(stream) >= length/4 && len(seqs) < maxSeqs {
		k := min(length, len(stream))
		seqs = append(seqs, append([]int{tok.BOS}, stream[:k]...))
		stream = stream[k:]
	}
	if len(seqs) == 0 {
		return nil, fmt.Errorf("%w: the calibration text has fewer than %d tokens", ErrQuant, length/4)
	}
	return seqs, nil
}

// floatModel is a model's weights dequantized to float32, with a forward
// pass that records what every matrix sees.
type floatModel struct {
	c                          *core.Config
	emb, cls                   []float32
	wq, wk, wv, wo, w1, w2, w3 [][]float32
	rmsAtt, rmsFFN, rmsFinal   []float32
}

func dequantF32(m *core.Mat) []float32 {
	out := make([]float32, m.Rows*m.Cols)
	for i := 0; i < m.Rows; i++ {
		m.Row(i, out[i*m.Cols:(i+1)*m.Cols])
	}
	return out
}

func newFloatModel(m *core.Model) *floatModel {
	w := &m.Weights
	layers := func(ms []core.Mat) [][]float32 {
		out := make([][]float32, len(ms))
		for i := range ms {
			out[i] = dequantF32(&ms[i])
		}
		return out
	}
	fm := &floatModel{c: &m.Config, emb: dequantF32(&w.TokenEmbedding),
		wq: layers(w.Wq), wk: layers(w.Wk), wv: layers(w.Wv), wo: layers(w.Wo),
		w1: layers(w.W1), w2: layers(w.W2), w3: layers(w.W3),
		rmsAtt: w.RmsAtt, rmsFFN: w.RmsFFN, rmsFinal: w.RmsFinal}
	fm.cls = fm.emb
	if !m.SharedClassifier() {
		fm.cls = dequantF32(w.Wcls)
	}
	return fm
}

// run feeds tokens from position 0, adding every matrix input to cal (when
// not nil) and passing each position's logits to logits (when not nil).
// It computes what core.Forward computes for an fp32 model.
func (fm *floatModel) run(tokens []int, cal *Calibration, logits func(pos int, l []float32)) {
	c := fm.c
	dim, hidden, kvDim, hs, qDim := c.Dim, c.HiddenDim, c.KVDim(), c.HeadSize(), c.QDim()
	kvMul := c.NHeads / c.NKVHeads
	n := len(tokens)
	x, xbuf, xb2 := make([]float32, dim), make([]float32, max(dim, qDim)), make([]float32, dim)
	xb, heads := xbuf[:dim], xbuf[:qDim] // the same buffer unless heads were pruned
	q := make([]float32, qDim)
	hb, hb2 := make([]float32, hidden), make([]float32, hidden)
	att := make([]float32, n)
	kc, vc := make([]float32, c.NLayers*n*kvDim), make([]float32, c.NLayers*n*kvDim)
	out := make([]float32, c.VocabSize)
	sqrtHS := float32(math.Sqrt(float64(hs)))
	for pos, tok := range tokens {
		if cal != nil {
			cal.Tokens++
			cal.TokFreq[tok]++
		}
		copy(x, fm.emb[tok*dim:(tok+1)*dim])
		for l := 0; l < c.NLayers; l++ {
			calRMSNorm(xb, x, fm.rmsAtt[l*dim:(l+1)*dim], c.NormEps)
			if cal != nil {
				cal.AttIn[l].add(xb)
			}
			loff := l * n * kvDim
			k := kc[loff+pos*kvDim : loff+(pos+1)*kvDim]
			v := vc[loff+pos*kvDim : loff+(pos+1)*kvDim]
			calMatVec(q, fm.wq[l], xb)
			calMatVec(k, fm.wk[l], xb)
			calMatVec(v, fm.wv[l], xb)
			for i := 0; i < qDim; i += 2 {
				hd := i % hs
				freq := 1 / float32(math.Pow(float64(c.RopeTheta), float64(float32(hd)/float32(hs))))
				val := float32(pos) * freq
				fcr, fci := float32(math.Cos(float64(val))), float32(math.Sin(float64(val)))
				v0, v1 := q[i], q[i+1]
				q[i] = float32(v0*fcr) - float32(v1*fci)
				q[i+1] = float32(v0*fci) + float32(v1*fcr)
				if i < kvDim {
					v0, v1 = k[i], k[i+1]
					k[i] = float32(v0*fcr) - float32(v1*fci)
					k[i+1] = float32(v0*fci) + float32(v1*fcr)
				}
			}
			for h := 0; h < c.NHeads; h++ {
				qh := q[h*hs : (h+1)*hs]
				a := att[:pos+1]
				koff := loff + (h/kvMul)*hs
				for t := range a {
					kt := kc[koff+t*kvDim : koff+t*kvDim+hs]
					var score float32
					for i, qv := range qh {
						score += float32(qv * kt[i])
					}
					a[t] = score / sqrtHS
				}
				calSoftmax(a)
				o := heads[h*hs : (h+1)*hs]
				clear(o)
				for t, av := range a {
					vt := vc[koff+t*kvDim : koff+t*kvDim+hs]
					for i := range o {
						o[i] += float32(av * vt[i])
					}
				}
			}
			if cal != nil {
				cal.AttOut[l].add(heads)
			}
			calMatVec(xb2, fm.wo[l], heads)
			for i := range x {
				x[i] += xb2[i]
			}
			calRMSNorm(xb, x, fm.rmsFFN[l*dim:(l+1)*dim], c.NormEps)
			if cal != nil {
				cal.FFNIn[l].add(xb)
			}
			calMatVec(hb, fm.w1[l], xb)
			calMatVec(hb2, fm.w3[l], xb)
			for i, val := range hb {
				val *= 1 / (1 + float32(math.Exp(float64(-val))))
				hb[i] = val * hb2[i]
			}
			if cal != nil {
				cal.FFNHid[l].add(hb)
			}
			calMatVec(xb, fm.w2[l], hb)
			for i := range x {
				x[i] += xb[i]
			}
		}
		calRMSNorm(x, x, fm.rmsFinal, c.NormEps)
		if cal != nil {
			cal.Final.add(x)
		}
		if logits != nil {
			calMatVec(out, fm.cls, x)
			logits(pos, out)
		}
	}
}

// calMatVec is y = W x with float32 sums in llama2.c's order.
func calMatVec(y, w, x []float32) {
	n := len(x)
	for i := range y {
		row := w[i*n : i*n+n]
		var s float32
		for j, xv := range x {
			s += float32(row[j] * xv)
		}
		y[i] = s
	}
}

func calRMSNorm(o, x, weight []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += float32(v * v)
	}
	ss = ss/float32(len(x)) + eps
	ss = 1 / float32(math.Sqrt(float64(ss)))
	for j, v := range x {
		o[j] = weight[j] * float32(ss*v)
	}
}

func calSoftmax(x []float32) {
	mx := x[0]
	for _, v := range x[1:] {
		mx = max(mx, v)
	}
	var sum float32
	for i, v := range x {
		x[i] = float32(math.Exp(float64(v - mx)))
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}
