package quant

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"mote/core"
)

// ErrEval reports an evaluation that cannot run as asked.
var ErrEval = errors.New("eval")

// Segment is one independent forward run: Tokens are fed from position 0
// (Tokens[0] is BOS), and the logits at positions First..len(Tokens)-2 score
// the token that follows each of them.
type Segment struct {
	Tokens []int
	First  int
}

// Scored is the number of predictions a segment contributes.
func (s Segment) Scored() int { return max(0, len(s.Tokens)-1-s.First) }

// ChunkSegments is llama.cpp's llama-perplexity protocol: floor(len/n)
// chunks of n tokens, position 0 of each overwritten with BOS, the logits at
// positions n/2..n-2 scored. tokens must be the whole text encoded once.
func ChunkSegments(tokens []int, n, bos int) ([]Segment, error) {
	if n < 3 {
		return nil, fmt.Errorf("%w: context %d is too short (at least 3)", ErrEval, n)
	}
	chunks := len(tokens) / n
	if chunks == 0 {
		return nil, fmt.Errorf("%w: the text has %d tokens, fewer than one chunk of %d", ErrEval, len(tokens), n)
	}
	segs := make([]Segment, chunks)
	for c := range segs {
		t := slices.Clone(tokens[c*n : (c+1)*n])
		t[0] = bos
		segs[c] = Segment{Tokens: t, First: n / 2}
	}
	return segs, nil
}

// DocSeparator splits documents in TinyStories-style text files.
const DocSeparator = "<|endoftext|>"

// DocSegments is the per-document protocol of llama2.c-style evaluations:
// each <|endoftext|>-separated document, stripped of surrounding white
// space, is encoded with BOS, truncated to maxCtx tokens and scored at
// every position.
func DocSegments(tok *core.Tokenizer, text string, maxCtx int) ([]Segment, error) {
	if maxCtx < 2 {
		return nil, fmt.Errorf("%w: max context %d is too short (at least 2)", ErrEval, maxCtx)
	}
	var segs []Segment
	for _, doc := range strings.Split(text, DocSeparator) {
		doc = strings.TrimSpace(doc)
		if doc == "" {
			continue
		}
		t := tok.Encode(doc, true, false)
		if len(t) > maxCtx {
			t = t[:maxCtx]
		}
		if len(t) >= 2 {
			segs = append(segs, Segment{Tokens: t})
		}
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w: the text holds no document", ErrEval)
	}
	return segs, nil
}

// TextTokens encodes a whole file as llama-perplexity does: one trailing
// newline dropped, BOS and the tokenizer's leading space added, special
// markers such as <|endoftext|> treated as plain text.
func TextTokens(tok *core.Tokenizer, text string) []int {
	return tok.Encode(strings.TrimSuffix(text, "\n"), true, false)
}

// Result is what an evaluation measured. The figures against a base model
// are zero when there was none.
type Result struct {
	Scored  int     // predictions scored
	NLL     float64 // mean negative log-likelihood of the true token, nats
	PPL     float64 // exp(NLL)
	BaseNLL float64
	BasePPL float64
	LnRatio float64 // ln(PPL/BasePPL) = NLL - BaseNLL
	KLDMean float64 // mean KL(base || model), nats
	KLDP99  float64 // 99th percentile of the per-token KLD
	KLDMax  float64
	Top1    float64 // fraction of positions where both argmaxes agree
	RMSDp   float64 // RMS of p_model(true) - p_base(true)
	HasBase bool
}

// Options tune an evaluation run.
type Options struct {
	Workers  int            // goroutines; 0 means GOMAXPROCS
	Progress func(done int) // called with the number of segments finished so far (calls are serialised)
}

// tokenStats are the per-prediction figures of one model, stored in order
// so that sums do not depend on scheduling.
type tokenStats struct {
	nll, kld, dp []float64
	top1         []bool
}

// Evaluate scores model (and, when base is not nil, compares it with base)
// on segments, running the same Forward that generation uses. Segments are
// spread over worker goroutines, one core.State (per model) each.
func Evaluate(model, base *core.Model, segs []Segment, opt Options) (*Result, error) {
	rs, err := EvaluateMany([]*core.Model{model}, base, segs, opt)
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// EvaluateMany scores several models on the same segments in one pass, each
// against base when it is not nil (the base runs once for all of them).
func EvaluateMany(ms []*core.Model, base *core.Model, segs []Segment, opt Options) ([]*Result, error) {
	if len(ms) == 0 {
		return nil, fmt.Errorf("%w: no model to evaluate", ErrEval)
	}
	vocab := ms[0].Config.VocabSize
	all := append([]*core.Model{base}, ms...)
	for _, m := range all {
		if m != nil && m.Config.VocabSize != vocab {
			return nil, fmt.Errorf("%w: vocabularies differ (%d and %d tokens)", ErrEval, vocab, m.Config.VocabSize)
		}
	}
	maxLen := 0
	offsets := make([]int, len(segs)+1)
	for i, s := range segs {
		if s.First < 0 || len(s.Tokens) < 1 {
			return nil, fmt.Errorf("%w: segment %d is empty", ErrEval, i)
		}
		for _, t := range s.Tokens {
			if uint(t) >= uint(vocab) {
				return nil, fmt.Errorf("%w: token id %d outside the vocabulary", ErrEval, t)
			}
		}
		maxLen = max(maxLen, len(s.Tokens))
		offsets[i+1] = offsets[i] + s.Scored()
	}
	total := offsets[len(segs)]
	if total == 0 {
		return nil, fmt.Errorf("%w: nothing to score", ErrEval)
	}
	for _, m := range all {
		if m != nil && maxLen-1 > m.Config.SeqLen {
			return nil, fmt.Errorf("%w: segments of %d tokens exceed the model's context of %d", ErrEval, maxLen, m.Config.SeqLen)
		}
	}
	newStats := func(full bool) *tokenStats {
		st := &tokenStats{nll: make([]float64, total)}
		if full {
			st.kld, st.dp, st.top1 = make([]float64, total), make([]float64, total), make([]bool, total)
		}
		return st
	}
	stats := make([]*tokenStats, len(ms))
	for i := range stats {
		stats[i] = newStats(base != nil)
	}
	var baseStats *tokenStats
	if base != nil {
		baseStats = newStats(false)
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(segs))
	var next atomic.Int64
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newEvalWorker(ms, base, maxLen)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(segs) {
					return
				}
				w.run(segs[i], stats, baseStats, offsets[i])
				if opt.Progress != nil {
					mu.Lock()
					done++
					opt.Progress(done)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	rs := make([]*Result, len(ms))
	for i, st := range stats {
		rs[i] = st.summarise(baseStats)
	}
	return rs, nil
}

// evalWorker owns the scratch memory of one goroutine.
type evalWorker struct {
	ms     []*core.Model
	base   *core.Model
	states []*core.State
	sb     *core.State
	lp     []float64 // log-probabilities (vocab)
	lpb    []float64
	pb     []float64 // base probabilities
}

func newEvalWorker(ms []*core.Model, base *core.Model, maxLen int) *evalWorker {
	vocab := ms[0].Config.VocabSize
	w := &evalWorker{ms: ms, base: base, lp: make([]float64, vocab)}
	for _, m := range ms {
		w.states = append(w.states, m.NewState(maxLen))
	}
	if base != nil {
		w.sb = base.NewState(maxLen)
		w.lpb, w.pb = make([]float64, vocab), make([]float64, vocab)
	}
	return w
}

// run feeds one segment and writes its predictions from slot off on. The
// KV cache needs no clearing between segments: every position is written
// before any position reads it.
func (w *evalWorker) run(seg Segment, stats []*tokenStats, bst *tokenStats, off int) {
	last := len(seg.Tokens) - 2 // the last position whose logits are scored
	for pos := 0; pos <= last; pos++ {
		tok := seg.Tokens[pos]
		k := off + pos - seg.First
		target := seg.Tokens[pos+1]
		baseTop := -1
		if w.base != nil {
			bl := w.base.Forward(w.sb, tok, pos)
			if pos >= seg.First {
				evalLogSoftmax(w.lpb, bl)
				bst.nll[k] = -w.lpb[target]
				for i, v := range w.lpb {
					w.pb[i] = math.Exp(v)
				}
				baseTop = evalArgmax(w.lpb)
			}
		}
		for mi, m := range w.ms {
			logits := m.Forward(w.states[mi], tok, pos)
			if pos < seg.First {
				continue
			}
			st := stats[mi]
			evalLogSoftmax(w.lp, logits)
			st.nll[k] = -w.lp[target]
			if w.base == nil {
				continue
			}
			var kld float64
			for i, pb := range w.pb {
				if pb > 0 {
					kld += pb * (w.lpb[i] - w.lp[i])
				}
			}
			st.kld[k] = max(kld, 0)
			st.dp[k] = math.Exp(w.lp[target]) - w.pb[target]
			st.top1[k] = evalArgmax(w.lp) == baseTop
		}
	}
}

// evalLogSoftmax writes ln softmax(logits) in float64.
func evalLogSoftmax(dst []float64, logits []float32) {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = max(mx, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	lz := mx + math.Log(sum)
	for i, v := range logits {
		dst[i] = float64(v) - lz
	}
}

func evalArgmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

func (st *tokenStats) summarise(base *tokenStats) *Result {
	n := len(st.nll)
	r := &Result{Scored: n, HasBase: base != nil}
	r.NLL = evalMean(st.nll)
	r.PPL = math.Exp(r.NLL)
	if base == nil {
		return r
	}
	r.BaseNLL = evalMean(base.nll)
	r.BasePPL = math.Exp(r.BaseNLL)
	var diff float64
	for i := range st.nll {
		diff += st.nll[i] - base.nll[i]
	}
	r.LnRatio = diff / float64(n)
	r.KLDMean = evalMean(st.kld)
	sorted := slices.Clone(st.kld)
	slices.Sort(sorted)
	r.KLDP99 = Percentile(sorted, 0.99)
	r.KLDMax = sorted[n-1]
	agree := 0
	var dp2 float64
	for i := range st.top1 {
		if st.top1[i] {
			agree++
		}
		dp2 += st.dp[i] * st.dp[i]
	}
	r.Top1 = float64(agree) / float64(n)
	r.RMSDp = math.Sqrt(dp2 / float64(n))
	return r
}

func evalMean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// Percentile interpolates linearly between the closest ranks of sorted
// values (q in [0, 1]).
func Percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i]*(1-f) + sorted[i+1]*f
}
