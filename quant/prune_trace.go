package quant

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// pStats are activation statistics gathered on calibration tokens: the sum
// of squares of every input column of every matrix (Wanda's ‖X_j‖²) and each
// block's influence.
type pStats struct {
	tokens int
	attIn  [][]float64 // (layer, dim) input of wq, wk, wv (after the attention rmsnorm)
	attOut [][]float64 // (layer, nHeads*hs) input of wo (the heads' outputs)
	ffnIn  [][]float64 // (layer, dim) input of w1, w3 (after the ffn rmsnorm)
	ffnHid [][]float64 // (layer, hidden) input of w2 (silu(w1 x) * w3 x)
	bi     []float64   // (layer) sum over tokens of 1 - cos(block input, block output)
	gram   [][]float64 // (layer) Σ x xᵀ of the input of w2 or of wo (see pGram), nil when not asked for
}

// pGram chooses which Gram matrix calibrate accumulates: the least-squares
// refit after removing neurons or heads needs the Gram of the input of the
// matrix that loses columns (w2 for FFN neurons, wo for heads).
type pGram int

const (
	noGram  pGram = iota
	gramFFN       // input of w2 (hidden)
	gramAtt       // input of wo (nHeads*hs)
)

func (p *pModel) gramWidth(kind pGram) int {
	switch kind {
	case gramFFN:
		return p.c.HiddenDim
	case gramAtt:
		return p.qDim()
	}
	return 0
}

func newPStats(p *pModel) *pStats {
	l := len(p.layers)
	st := &pStats{attIn: make([][]float64, l), attOut: make([][]float64, l),
		ffnIn: make([][]float64, l), ffnHid: make([][]float64, l), bi: make([]float64, l)}
	for i := 0; i < l; i++ {
		st.attIn[i] = make([]float64, p.c.Dim)
		st.attOut[i] = make([]float64, p.qDim())
		st.ffnIn[i] = make([]float64, p.c.Dim)
		st.ffnHid[i] = make([]float64, p.c.HiddenDim)
	}
	return st
}

func (st *pStats) add(o *pStats) {
	st.tokens += o.tokens
	for l := range st.bi {
		st.bi[l] += o.bi[l]
		for _, pair := range [][2][]float64{{st.attIn[l], o.attIn[l]}, {st.attOut[l], o.attOut[l]},
			{st.ffnIn[l], o.ffnIn[l]}, {st.ffnHid[l], o.ffnHid[l]}} {
			for j, v := range pair[1] {
				pair[0][j] += v
			}
		}
	}
}

// prAddSq adds x² to acc element-wise.
func prAddSq(acc []float64, x []float32) {
	acc = acc[:len(x)]
	for i, v := range x {
		acc[i] += float64(v) * float64(v)
	}
}

// calibrate runs every calibration sequence through p and sums the
// statistics, and the Gram matrix of kind when asked. Sequences run on all
// cores a batch at a time; their statistics are summed in sequence order
// (the Gram matrices layer by layer, in parallel over layers, each in token
// order), so the result does not depend on the number of cores.
func (p *pModel) calibrate(seqs [][]int, kind pGram) *pStats {
	st := newPStats(p)
	width := p.gramWidth(kind)
	if kind != noGram {
		st.gram = make([][]float64, len(p.layers))
		for l := range st.gram {
			st.gram[l] = make([]float64, width*width)
		}
	}
	workers := runtime.GOMAXPROCS(0)
	for b := 0; b < len(seqs); b += workers {
		batch := seqs[b:min(b+workers, len(seqs))]
		per := make([]*pStats, len(batch))
		caps := make([][][]float32, len(batch)) // (seq, layer) x (pos, width)
		parallelFor(len(batch), func(i int) {
			per[i] = newPStats(p)
			if kind != noGram {
				caps[i] = make([][]float32, len(p.layers))
				for l := range caps[i] {
					caps[i][l] = make([]float32, len(batch[i])*width)
				}
			}
			p.trace(batch[i], per[i], kind, caps[i], nil)
		})
		for _, o := range per {
			st.add(o)
		}
		if kind != noGram {
			parallelFor(len(p.layers), func(l int) {
				for i := range batch {
					for t := 0; t < len(batch[i]); t++ {
						gramAdd(st.gram[l], caps[i][l][t*width:(t+1)*width])
					}
				}
			})
		}
	}
	for _, g := range st.gram {
		gramMirror(g, width)
	}
	return st
}

// parallelFor runs f(0..n-1) on all cores.
func parallelFor(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// gramAdd adds the upper triangle of x xᵀ to g (len(x) x len(x)).
func gramAdd(g []float64, x []float32) {
	n := len(x)
	for i, xi := range x {
		if xi == 0 {
			continue
		}
		fi := float64(xi)
		row := g[i*n : (i+1)*n]
		for j := i; j < n; j++ {
			row[j] += fi * float64(x[j])
		}
	}
}

// gramMirror copies the upper triangle onto the lower one.
func gramMirror(g []float64, n int) {
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			g[j*n+i] = g[i*n+j]
		}
	}
}

// trace runs tokens from position 0 through p in float32, the way
// core.Forward does (llama2.c's forward), adding to st (when not nil) and
// copying the input of w2 or wo (kind) of every layer and position into
// capture (when not nil, (layer) x (pos, width)), and handing each
// position's logits to logits (when not nil; the classifier is skipped
// otherwise). It is the reference that sees inside the blocks.
func (p *pModel) trace(tokens []int, st *pStats, kind pGram, capture [][]float32, logits func(pos int, l []float32)) {
	c := &p.c
	dim, hidden, hs := c.Dim, c.HiddenDim, p.hs
	qDim, kvDim := p.qDim(), p.kvDim()
	kvMul := c.NHeads / c.NKVHeads
	n := len(tokens)
	x, xb, xin := make([]float32, dim), make([]float32, dim), make([]float32, dim)
	q, ao := make([]float32, qDim), make([]float32, qDim)
	hb, hb2 := make([]float32, hidden), make([]float32, hidden)
	att := make([]float32, n)
	kc := make([][]float32, len(p.layers)) // (layer) x (pos, kvDim)
	vc := make([][]float32, len(p.layers))
	for l := range kc {
		kc[l], vc[l] = make([]float32, n*kvDim), make([]float32, n*kvDim)
	}
	var out []float32
	if logits != nil {
		out = make([]float32, c.VocabSize)
	}
	freq := ropeFreqs(c.RopeTheta, hs)
	rc, rs := make([]float32, hs/2), make([]float32, hs/2)
	sqrtHS := float32(math.Sqrt(float64(hs)))
	for pos, tok := range tokens {
		for i, f := range freq {
			val := float32(pos) * f
			rc[i], rs[i] = float32(math.Cos(float64(val))), float32(math.Sin(float64(val)))
		}
		copy(x, p.emb[tok*dim:(tok+1)*dim])
		for l := range p.layers {
			ly := &p.layers[l]
			copy(xin, x)

			// attention
			calRMSNorm(xb, x, ly.rmsAtt, c.NormEps)
			if st != nil {
				prAddSq(st.attIn[l], xb)
			}
			k := kc[l][pos*kvDim : (pos+1)*kvDim]
			v := vc[l][pos*kvDim : (pos+1)*kvDim]
			calMatVec(q, ly.wq, xb)
			calMatVec(k, ly.wk, xb)
			calMatVec(v, ly.wv, xb)
			for i := 0; i < qDim; i += 2 {
				fcr, fci := rc[(i%hs)/2], rs[(i%hs)/2]
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
				koff := (h / kvMul) * hs
				a := att[:pos+1]
				for t := range a {
					kt := kc[l][t*kvDim+koff : t*kvDim+koff+hs]
					var s float32
					for i, qv := range qh {
						s += float32(qv * kt[i])
					}
					a[t] = s / sqrtHS
				}
				calSoftmax(a)
				o := ao[h*hs : (h+1)*hs]
				clear(o)
				for t, w := range a {
					vt := vc[l][t*kvDim+koff : t*kvDim+koff+hs]
					for i := range o {
						o[i] += float32(w * vt[i])
					}
				}
			}
			calMatVec(xb, ly.wo, ao)
			for i := range x {
				x[i] += xb[i]
			}
			if st != nil {
				prAddSq(st.attOut[l], ao)
			}
			if capture != nil && kind == gramAtt {
				copy(capture[l][pos*qDim:], ao)
			}

			// ffn
			calRMSNorm(xb, x, ly.rmsFFN, c.NormEps)
			calMatVec(hb, ly.w1, xb)
			calMatVec(hb2, ly.w3, xb)
			for i, val := range hb {
				val *= 1 / (1 + float32(math.Exp(float64(-val))))
				hb[i] = val * hb2[i]
			}
			if st != nil {
				prAddSq(st.ffnIn[l], xb)
				prAddSq(st.ffnHid[l], hb)
			}
			if capture != nil && kind == gramFFN {
				copy(capture[l][pos*hidden:], hb)
			}
			calMatVec(xb, ly.w2, hb)
			for i := range x {
				x[i] += xb[i]
			}
			if st != nil {
				st.bi[l] += 1 - prCosine(xin, x)
			}
		}
		if st != nil {
			st.tokens++
		}
		if logits != nil {
			calRMSNorm(xb, x, p.rmsFinal, c.NormEps)
			cls := p.cls
			if cls == nil {
				cls = p.emb
			}
			calMatVec(out, cls, xb)
			logits(pos, out)
		}
	}
}

// ropeFreqs returns llama2.c's frequency for each pair i/2 of a head,
// freq = 1/theta^(i/hs) (the angle at pos is pos*freq), as core computes it.
func ropeFreqs(theta float32, hs int) []float32 {
	freq := make([]float32, hs/2)
	for i := 0; i < hs; i += 2 {
		freq[i/2] = 1 / float32(math.Pow(float64(theta), float64(float32(i)/float32(hs))))
	}
	return freq
}

// prCosine is the prCosine similarity of a and b (1 when either is zero).
func prCosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	if aa == 0 || bb == 0 {
		return 1
	}
	return ab / math.Sqrt(aa*bb)
}
