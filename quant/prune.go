package quant

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"mote/core"
)

// SparsityMethod scores weights for unstructured and N:M pruning.
type SparsityMethod int

const (
	Magnitude SparsityMethod = iota // |W_ij|
	Wanda                           // |W_ij| · ‖X_j‖ (Sun et al. 2023), X the matrix's inputs on calibration tokens
)

func (s SparsityMethod) String() string {
	if s == Wanda {
		return "wanda"
	}
	return "magnitude"
}

// PruneOptions say what to remove. Fractions are of what is there; zero
// leaves that part alone.
type PruneOptions struct {
	FFN    float64 // fraction of FFN neurons removed in every layer
	Heads  float64 // fraction of key/value heads removed in every layer, each with the query heads that share it
	Layers int     // whole layers removed

	// VocabText keeps only the tokens that encoding these texts uses (plus
	// byte fallback, <unk>, BOS and EOS); nil leaves the vocabulary alone.
	VocabText []string

	Sparsity float64        // fraction of each matrix's weights zeroed (unstructured)
	N, M     int            // N:M sparsity: at most N non-zeros in every M consecutive inputs (0 for none)
	Method   SparsityMethod // how weights are scored for Sparsity / N:M

	// NoRefit keeps the surviving w2 / wo columns as they are after FFN or
	// head pruning instead of refitting them by least squares (prune_refit.go).
	NoRefit bool

	// Calib is the calibration tokens (PruneTextCalib, PruneSelfCalib).
	// When nil and importance is needed, the model writes its own with
	// CalibSeed.
	Calib     [][]int
	CalibSeed uint64
}

// needsCalib reports whether activations are needed.
func (o *PruneOptions) needsCalib() bool {
	return o.FFN > 0 || o.Heads > 0 || o.Layers > 0 || ((o.Sparsity > 0 || o.M > 0) && o.Method == Wanda)
}

// PruneReport says what Prune removed.
type PruneReport struct {
	Before, After   core.Config
	ParamsBefore    int64
	ParamsAfter     int64 // parameters still stored (zeros of sparsity included)
	CalibTokens     int   // calibration positions the importances were measured on
	LayersRemoved   []int // indices in the input model
	LayerInfluence  []float64
	KVHeadsKept     [][]int // (layer of the output) kept key/value heads, as indices in the input layer
	FFNKept         int
	FFNNeuronsKept  [][]int // (layer of the output) kept neurons, as indices in the input layer
	VocabKept       int
	Zeroed, Sparsed int64 // weights set to zero by sparsity, out of the weights it applied to
}

// Prune returns a pruned fp32 copy of m (m is not modified). Structured
// pruning runs in the order layers, heads, FFN neurons, each scored on
// fresh activations of the model pruned so far; then unstructured or N:M
// sparsity; then the vocabulary.
func Prune(m *core.Model, o PruneOptions) (*core.Model, *PruneReport, error) {
	if err := o.Check(&m.Config); err != nil {
		return nil, nil, err
	}
	p, err := fromCore(m)
	if err != nil {
		return nil, nil, err
	}
	r := &PruneReport{Before: m.Config, ParamsBefore: p.params()}
	if o.needsCalib() && o.Calib == nil {
		o.Calib = PruneSelfCalib(m, o.CalibSeed)
	}
	for _, s := range o.Calib {
		for _, t := range s {
			if uint(t) >= uint(m.Config.VocabSize) {
				return nil, nil, fmt.Errorf("%w: calibration token %d outside the vocabulary of %d", ErrPrune, t, m.Config.VocabSize)
			}
		}
		if len(s) > m.Config.SeqLen {
			return nil, nil, fmt.Errorf("%w: calibration sequence of %d tokens exceeds the context of %d", ErrPrune, len(s), m.Config.SeqLen)
		}
		r.CalibTokens += len(s)
	}
	gram := func(kind pGram) pGram {
		if o.NoRefit {
			return noGram
		}
		return kind
	}
	if o.Layers > 0 {
		st := p.calibrate(o.Calib, noGram)
		r.LayersRemoved, r.LayerInfluence = p.pruneLayers(st, o.Layers)
	}
	if o.Heads > 0 {
		st := p.calibrate(o.Calib, gram(gramAtt))
		r.KVHeadsKept = p.pruneHeads(st, prRemoveCount(o.Heads, p.c.NKVHeads))
	}
	if o.FFN > 0 {
		st := p.calibrate(o.Calib, gram(gramFFN))
		r.FFNNeuronsKept = p.pruneFFN(st, prRemoveCount(o.FFN, p.c.HiddenDim))
	}
	if o.Sparsity > 0 || o.M > 0 {
		var st *pStats
		if o.Method == Wanda {
			st = p.calibrate(o.Calib, noGram)
		}
		r.Zeroed, r.Sparsed = p.sparsify(st, o)
	}
	if o.VocabText != nil {
		if err := p.pruneVocab(o.VocabText); err != nil {
			return nil, nil, err
		}
	}
	out, err := p.toCore()
	if err != nil {
		return nil, nil, err
	}
	r.After = out.Config
	r.ParamsAfter = p.params()
	r.FFNKept = out.Config.HiddenDim
	r.VocabKept = out.Config.VocabSize
	return out, r, nil
}

// prRemoveCount is how many of n parts a fraction removes (to the nearest).
func prRemoveCount(frac float64, n int) int { return int(math.Round(frac * float64(n))) }

// Check rejects requests that cannot be met for a model of shape c, before
// any work is done (Prune calls it first).
func (o *PruneOptions) Check(c *core.Config) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrPrune}, a...)...)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"ffn", o.FFN}, {"heads", o.Heads}, {"sparsity", o.Sparsity}} {
		if !(f.v >= 0 && f.v < 1) {
			return bad("--%s %g: a fraction must be in [0, 1)", f.name, f.v)
		}
	}
	if o.FFN > 0 {
		if k := prRemoveCount(o.FFN, c.HiddenDim); k == 0 || k >= c.HiddenDim {
			return bad("--ffn %g removes %d of %d neurons per layer", o.FFN, k, c.HiddenDim)
		}
	}
	if o.Heads > 0 {
		if k := prRemoveCount(o.Heads, c.NKVHeads); k == 0 || k >= c.NKVHeads {
			return bad("--heads %g removes %d of %d key/value heads per layer (steps of %.3g)", o.Heads, k, c.NKVHeads, 1/float64(c.NKVHeads))
		}
	}
	if o.Layers < 0 || o.Layers >= c.NLayers {
		return bad("--layers %d: the model has %d layers (at least one must stay)", o.Layers, c.NLayers)
	}
	if o.M != 0 || o.N != 0 {
		if o.M < 2 || o.N < 1 || o.N >= o.M || o.M > 1024 {
			return bad("N:M %d:%d: need 1 <= N < M <= 1024", o.N, o.M)
		}
		if o.Sparsity > 0 && math.Abs(o.Sparsity-float64(o.M-o.N)/float64(o.M)) > 1e-9 {
			return bad("--sparsity %g contradicts %d:%d (which zeroes %g)", o.Sparsity, o.N, o.M, float64(o.M-o.N)/float64(o.M))
		}
	}
	if o.Method != Magnitude && o.Method != Wanda {
		return bad("unknown sparsity method %d", o.Method)
	}
	return nil
}

// prLowest returns the indices of the k smallest scores (ties: lower index
// first), and keepOrder the others in ascending order.
func prLowest(scores []float64, k int) (drop, keep []int) {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	drop = slices.Clone(idx[:k])
	keep = slices.Clone(idx[k:])
	slices.Sort(drop)
	slices.Sort(keep)
	return drop, keep
}

// pruneLayers removes the n layers whose blocks change their input least:
// block influence 1 - cos(x_in, x_out), averaged over the calibration
// tokens (ShortGPT's measure), all scored on the unpruned model.
func (p *pModel) pruneLayers(st *pStats, n int) (removed []int, influence []float64) {
	influence = make([]float64, len(p.layers))
	for l := range influence {
		influence[l] = st.bi[l] / float64(max(st.tokens, 1))
	}
	removed, keep := prLowest(influence, n)
	layers := make([]pLayer, 0, len(keep))
	for _, l := range keep {
		layers = append(layers, p.layers[l])
	}
	p.layers = layers
	p.c.NLayers = len(layers)
	return removed, influence
}

// pruneHeads removes n key/value heads from every layer, each together with
// the query heads that read it. A head group's importance is Wanda's score
// summed over the wo columns it feeds: Σ_i Σ_c |Wo[i,c]| · ‖X_c‖. When st
// holds the Gram matrix of wo's input, the kept wo columns are refit.
func (p *pModel) pruneHeads(st *pStats, n int) (kept [][]int) {
	c := &p.c
	hs, qd := p.hs, p.qDim()
	kvMul := c.NHeads / c.NKVHeads
	groupCols := kvMul * hs // wo columns per key/value head
	for l := range p.layers {
		ly := &p.layers[l]
		col := prColImportance(ly.wo, qd, st.attOut[l])
		score := make([]float64, c.NKVHeads)
		for g := range score {
			for _, v := range col[g*groupCols : (g+1)*groupCols] {
				score[g] += v
			}
		}
		_, keepG := prLowest(score, n)
		var qRows, kvRows []int
		for _, g := range keepG {
			for r := g * groupCols; r < (g+1)*groupCols; r++ {
				qRows = append(qRows, r)
			}
			for r := g * hs; r < (g+1)*hs; r++ {
				kvRows = append(kvRows, r)
			}
		}
		ly.wq = prPickRows(ly.wq, c.Dim, qRows)
		ly.wk = prPickRows(ly.wk, c.Dim, kvRows)
		ly.wv = prPickRows(ly.wv, c.Dim, kvRows)
		if st.gram != nil {
			ly.wo = prRefit(ly.wo, qd, st.gram[l], qRows)
		} else {
			ly.wo = prPickCols(ly.wo, qd, qRows)
		}
		kept = append(kept, keepG)
	}
	c.NKVHeads -= n
	c.NHeads = c.NKVHeads * kvMul
	return kept
}

// pruneFFN removes n hidden neurons from every layer: rows of w1 and w3 and
// the matching columns of w2. When st holds the Gram matrix of w2's input,
// neurons go one at a time by Optimal Brain Surgeon and the kept w2 columns
// compensate (obsSelect); otherwise they are scored by Wanda's
// Σ_i |W2[i,j]| · ‖h_j‖ and the rest are kept as they are.
func (p *pModel) pruneFFN(st *pStats, n int) (kept [][]int) {
	h := p.c.HiddenDim
	kept = make([][]int, len(p.layers))
	// layers are independent: OBS is O(n · hidden²) per layer, so run them
	// on all cores
	parallelFor(len(p.layers), func(l int) {
		ly := &p.layers[l]
		var keep []int
		var w2 []float32
		ok := false
		if st.gram != nil {
			keep, w2, ok = obsSelect(ly.w2, h, st.gram[l], n)
		}
		if !ok {
			_, keep = prLowest(prColImportance(ly.w2, h, st.ffnHid[l]), n)
			if st.gram != nil {
				w2 = prRefit(ly.w2, h, st.gram[l], keep)
			} else {
				w2 = prPickCols(ly.w2, h, keep)
			}
		}
		ly.w1 = prPickRows(ly.w1, p.c.Dim, keep)
		ly.w3 = prPickRows(ly.w3, p.c.Dim, keep)
		ly.w2 = w2
		kept[l] = keep
	})
	p.c.HiddenDim = h - n
	return kept
}

// prColImportance is, for every input column j of a (rows, cols) matrix,
// Σ_i |W[i,j]| · sqrt(sumSq[j]).
func prColImportance(w []float32, cols int, sumSq []float64) []float64 {
	s := make([]float64, cols)
	for i := 0; i < len(w); i += cols {
		for j, v := range w[i : i+cols] {
			s[j] += math.Abs(float64(v))
		}
	}
	for j := range s {
		s[j] *= math.Sqrt(sumSq[j])
	}
	return s
}
