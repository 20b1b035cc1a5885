package quant

import (
	"errors"
	"fmt"
	"slices"

	"mote/core"
)

// ErrPrune reports a pruning request that cannot be carried out.
var ErrPrune = errors.New("prune")

// pModel is the form of a model that pruning edits: fp32, one struct per
// layer (so that layers can be dropped) and an explicit head size (so that
// whole attention heads can be dropped without touching Dim).
type pModel struct {
	c        core.Config
	hs       int       // head size; Dim/NHeads until heads are pruned
	emb      []float32 // (vocab, dim)
	cls      []float32 // (vocab, dim); nil when the classifier is the embedding
	layers   []pLayer
	rmsFinal []float32 // (dim)
	tok      *core.Tokenizer
}

// pLayer is one transformer block; rows are outputs (y = W x).
type pLayer struct {
	rmsAtt, rmsFFN []float32 // (dim)
	wq             []float32 // (nHeads*hs, dim)
	wk, wv         []float32 // (nKVHeads*hs, dim)
	wo             []float32 // (dim, nHeads*hs)
	w1, w3         []float32 // (hidden, dim)
	w2             []float32 // (dim, hidden)
}

func (p *pModel) qDim() int  { return p.c.NHeads * p.hs }
func (p *pModel) kvDim() int { return p.c.NKVHeads * p.hs }

// prDequant copies a matrix into fresh fp32 values (rows, cols).
func prDequant(m *core.Mat) []float32 {
	f := make([]float32, m.Rows*m.Cols)
	for i := 0; i < m.Rows; i++ {
		m.Row(i, f[i*m.Cols:(i+1)*m.Cols])
	}
	return f
}

// fromCore copies m into the editable form; m itself is never modified.
// Quantized matrices are dequantized: pruning works on, and writes, fp32.
func fromCore(m *core.Model) (*pModel, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := m.Config
	w := &m.Weights
	p := &pModel{c: c, hs: c.HeadSize(), emb: prDequant(&w.TokenEmbedding),
		rmsFinal: slices.Clone(w.RmsFinal), tok: m.Tokenizer}
	if !m.SharedClassifier() {
		p.cls = prDequant(w.Wcls)
	}
	d := c.Dim
	p.layers = make([]pLayer, c.NLayers)
	for l := range p.layers {
		p.layers[l] = pLayer{
			rmsAtt: slices.Clone(w.RmsAtt[l*d : (l+1)*d]), rmsFFN: slices.Clone(w.RmsFFN[l*d : (l+1)*d]),
			wq: prDequant(&w.Wq[l]), wk: prDequant(&w.Wk[l]), wv: prDequant(&w.Wv[l]), wo: prDequant(&w.Wo[l]),
			w1: prDequant(&w.W1[l]), w2: prDequant(&w.W2[l]), w3: prDequant(&w.W3[l]),
		}
	}
	return p, nil
}

// toCore builds an fp32 core model that shares p's slices and validates it.
// A model whose attention heads were pruned keeps its width Dim with fewer
// heads of the same size: its config says so (core.Config.HeadDim).
func (p *pModel) toCore() (*core.Model, error) {
	c := p.c
	c.NLayers = len(p.layers)
	if c.NLayers == 0 {
		return nil, fmt.Errorf("%w: no layer left", ErrPrune)
	}
	c.HeadDim = 0
	if c.NHeads*p.hs != c.Dim {
		c.HeadDim = p.hs
	}
	d, h, kv, qd := c.Dim, c.HiddenDim, p.kvDim(), p.qDim()
	m := &core.Model{Config: c, Tokenizer: p.tok}
	w := &m.Weights
	w.TokenEmbedding = core.NewMatF32(c.VocabSize, d, p.emb)
	if p.cls == nil {
		w.Wcls = &w.TokenEmbedding
	} else {
		cls := core.NewMatF32(c.VocabSize, d, p.cls)
		w.Wcls = &cls
	}
	w.RmsFinal = p.rmsFinal
	for _, ly := range p.layers {
		w.RmsAtt = append(w.RmsAtt, ly.rmsAtt...)
		w.RmsFFN = append(w.RmsFFN, ly.rmsFFN...)
		w.Wq = append(w.Wq, core.NewMatF32(qd, d, ly.wq))
		w.Wk = append(w.Wk, core.NewMatF32(kv, d, ly.wk))
		w.Wv = append(w.Wv, core.NewMatF32(kv, d, ly.wv))
		w.Wo = append(w.Wo, core.NewMatF32(d, qd, ly.wo))
		w.W1 = append(w.W1, core.NewMatF32(h, d, ly.w1))
		w.W2 = append(w.W2, core.NewMatF32(d, h, ly.w2))
		w.W3 = append(w.W3, core.NewMatF32(h, d, ly.w3))
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: the pruned model is inconsistent: %v", ErrPrune, err)
	}
	return m, nil
}

// params counts p's parameters (the classifier once when shared).
func (p *pModel) params() int64 {
	n := int64(len(p.emb) + len(p.cls) + len(p.rmsFinal))
	for _, ly := range p.layers {
		for _, s := range [][]float32{ly.rmsAtt, ly.rmsFFN, ly.wq, ly.wk, ly.wv, ly.wo, ly.w1, ly.w2, ly.w3} {
			n += int64(len(s))
		}
	}
	return n
}

// prPickRows copies the rows keep (ascending) of a (rows, cols) matrix.
func prPickRows(w []float32, cols int, keep []int) []float32 {
	out := make([]float32, 0, len(keep)*cols)
	for _, r := range keep {
		out = append(out, w[r*cols:(r+1)*cols]...)
	}
	return out
}

// prPickCols copies the columns keep (ascending) of a (rows, cols) matrix.
func prPickCols(w []float32, cols int, keep []int) []float32 {
	rows := len(w) / cols
	out := make([]float32, 0, rows*len(keep))
	for r := 0; r < rows; r++ {
		row := w[r*cols : (r+1)*cols]
		for _, c := range keep {
			out = append(out, row[c])
		}
	}
	return out
}
