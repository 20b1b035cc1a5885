package quant

import (
	"fmt"
	"math"

	"mote/core"
)

// A vocabulary-pruned model cannot be scored against its base the usual
// way: the base gives some probability to tokens the pruned model no longer
// has, so KL(base || pruned) is infinite wherever that mass is not zero.
// What pruning the vocabulary changes is exactly that mass: on the same
// tokens the kept logits are the base's logits (embedding and classifier
// rows are copied, nothing else changes), so the pruned distribution is the
// base distribution restricted to the kept tokens and renormalised.
// CompareVocabPruned measures that directly.

// VocabResult compares a vocabulary-pruned model with its base on the same
// text (the base's token ids, remapped for the pruned model).
type VocabResult struct {
	Scored      int
	Kept, Base  int     // vocabulary sizes
	LostMass    float64 // mean base probability of the removed tokens
	LostMassMax float64
	KLDKept     float64 // mean KL(base restricted to kept tokens, renormalised || pruned): ~0 when only the vocabulary changed
	Top1        float64 // fraction of positions where the base's argmax is the pruned model's argmax
	NLL, PPL    float64 // of the pruned model
	BasePPL     float64
}

// VocabMap maps the ids of a pruned vocabulary to the ids of the vocabulary
// it was cut from, which must contain it as an ordered subsequence (as
// PruneVocabTokenizer makes it).
func VocabMap(pruned, base *core.Tokenizer) ([]int, error) {
	m := make([]int, len(pruned.Vocab))
	j := 0
	for i, p := range pruned.Vocab {
		for j < len(base.Vocab) && base.Vocab[j] != p {
			j++
		}
		if j == len(base.Vocab) {
			return nil, fmt.Errorf("%w: token %d %q of the pruned vocabulary is not in the base's (in order)", ErrPrune, i, p)
		}
		m[i] = j
		j++
	}
	return m, nil
}

// CompareVocabPruned scores model (vocabulary-pruned from base) against
// base on segments of base token ids; every token of the segments must be
// kept. Segments run on all cores; sums are taken in segment order.
func CompareVocabPruned(model, base *core.Model, segs []Segment) (*VocabResult, error) {
	if model.Tokenizer == nil || base.Tokenizer == nil {
		return nil, fmt.Errorf("%w: both models need their tokenizers", ErrPrune)
	}
	toBase, err := VocabMap(model.Tokenizer, base.Tokenizer)
	if err != nil {
		return nil, err
	}
	toModel := make([]int, base.Config.VocabSize)
	for i := range toModel {
		toModel[i] = -1
	}
	for i, b := range toBase {
		toModel[b] = i
	}
	for _, s := range segs {
		for _, t := range s.Tokens {
			if uint(t) >= uint(len(toModel)) || toModel[t] < 0 {
				return nil, fmt.Errorf("%w: token %d of the text is not in the pruned vocabulary", ErrPrune, t)
			}
		}
	}
	type segSums struct {
		n                       int
		lost, lostMax, kld, nll float64
		baseNLL                 float64
		agree                   int
	}
	sums := make([]segSums, len(segs))
	parallelFor(len(segs), func(si int) {
		seg := segs[si]
		s := &sums[si]
		sm, sb := model.NewState(len(seg.Tokens)), base.NewState(len(seg.Tokens))
		lp := make([]float64, model.Config.VocabSize)
		lb := make([]float64, base.Config.VocabSize)
		for pos := 0; pos+1 < len(seg.Tokens); pos++ {
			tok := seg.Tokens[pos]
			lm := model.Forward(sm, toModel[tok], pos)
			lbase := base.Forward(sb, tok, pos)
			if pos < seg.First {
				continue
			}
			prLogSoftmax(lp, lm)
			prLogSoftmax(lb, lbase)
			target := seg.Tokens[pos+1]
			s.nll -= lp[toModel[target]]
			s.baseNLL -= lb[target]
			var kept float64
			for _, b := range toBase {
				kept += math.Exp(lb[b])
			}
			lost := max(0, 1-kept)
			s.lost += lost
			s.lostMax = max(s.lostMax, lost)
			// KL(base restricted to kept, renormalised || pruned)
			lk := math.Log(kept)
			var kld float64
			for i, b := range toBase {
				pb := math.Exp(lb[b] - lk)
				if pb > 0 {
					kld += pb * (lb[b] - lk - lp[i])
				}
			}
			s.kld += max(kld, 0)
			bestB, bestM := 0, 0
			for i := range lb {
				if lb[i] > lb[bestB] {
					bestB = i
				}
			}
			for i := range lp {
				if lp[i] > lp[bestM] {
					bestM = i
				}
			}
			if toBase[bestM] == bestB {
				s.agree++
			}
			s.n++
		}
	})
	var t segSums
	for _, s := range sums {
		t.n += s.n
		t.lost += s.lost
		t.lostMax = max(t.lostMax, s.lostMax)
		t.kld += s.kld
		t.nll += s.nll
		t.baseNLL += s.baseNLL
		t.agree += s.agree
	}
	if t.n == 0 {
		return nil, fmt.Errorf("%w: nothing to score", ErrPrune)
	}
	n := float64(t.n)
	return &VocabResult{Scored: t.n, Kept: model.Config.VocabSize, Base: base.Config.VocabSize,
		LostMass: t.lost / n, LostMassMax: t.lostMax, KLDKept: t.kld / n, Top1: float64(t.agree) / n,
		NLL: t.nll / n, PPL: math.Exp(t.nll / n), BasePPL: math.Exp(t.baseNLL / n)}, nil
}

// prLogSoftmax writes ln softmax(logits) in float64.
func prLogSoftmax(dst []float64, logits []float32) {
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
