package quant

import (
	"fmt"
	"strings"

	"mote/core"
)

// Calibration for pruning: token sequences, each fed from position 0.
const (
	// PruneCalibTokens is how many tokens a model writes for its own
	// calibration when no text is given (20 sequences of 256).
	PruneCalibTokens = 20 * 256
	// pruneCalibLen is the positions of one calibration sequence: BOS and
	// 256 tokens, or the model's context when that is shorter.
	pruneCalibLen = 257
	// PruneCalibMaxSeqs bounds how many sequences a calibration text yields.
	PruneCalibMaxSeqs = 64
)

// prBOS is the model's BOS id (llama2.c's 1 when it has no tokenizer).
func prBOS(m *core.Model) int {
	if m.Tokenizer != nil {
		return m.Tokenizer.BOS
	}
	return 1
}

// PruneSelfCalib has the model write its own calibration text: sequences
// that start with BOS, sampled at temperature 1 from the full distribution
// with llama2.c's seeded generator, at least PruneCalibTokens sampled tokens
// in all. A sampled BOS (the end of a story) is fed back like any token, as
// stories follow each other in the training data. The same model and seed
// always give the same tokens.
func PruneSelfCalib(m *core.Model, seed uint64) [][]int {
	n := min(pruneCalibLen, m.Config.SeqLen)
	if n < 2 {
		n = 2
	}
	count := (PruneCalibTokens + n - 2) / (n - 1)
	s := m.NewState(n)
	smp := core.NewSampler(m.Config.VocabSize, 1, 1, seed)
	seqs := make([][]int, count)
	for i := range seqs {
		seq := make([]int, n)
		seq[0] = prBOS(m)
		for pos := 0; pos+1 < n; pos++ {
			seq[pos+1] = smp.Sample(m.Forward(s, seq[pos], pos))
		}
		seqs[i] = seq
	}
	return seqs
}

// PruneTextCalib turns a calibration text into sequences: each
// <|endoftext|>-separated document is encoded with BOS, the documents are
// joined and cut into sequences of min(257, seqLen) positions (BOS first),
// at most maxSeqs of them (0: PruneCalibMaxSeqs). A final short piece is
// kept when it has at least 16 positions.
func PruneTextCalib(tok *core.Tokenizer, text string, seqLen, maxSeqs int) ([][]int, error) {
	if maxSeqs <= 0 {
		maxSeqs = PruneCalibMaxSeqs
	}
	n := min(pruneCalibLen, seqLen)
	if n < 2 {
		return nil, fmt.Errorf("%w: context of %d positions is too short to calibrate", ErrPrune, seqLen)
	}
	var stream []int
	for _, doc := range strings.Split(text, pruneDocSep) {
		doc = strings.TrimSpace(doc)
		if doc == "" {
			continue
		}
		stream = append(stream, tok.Encode(doc, true, false)...)
		if len(stream) >= n*maxSeqs {
			break
		}
	}
	var seqs [][]int
	for len(stream) > 0 && len(seqs) < maxSeqs {
		k := min(n, len(stream))
		if k < 16 && len(seqs) > 0 {
			break
		}
		seq := append([]int(nil), stream[:k]...)
		seq[0] = tok.BOS
		seqs = append(seqs, seq)
		stream = stream[k:]
	}
	if len(seqs) == 0 {
		return nil, fmt.Errorf("%w: the calibration text holds no document", ErrPrune)
	}
	return seqs, nil
}

// pruneDocSep separates documents in TinyStories-style text files.
const pruneDocSep = "<|endoftext|>"
