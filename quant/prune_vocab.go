package quant

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"

	"mote/core"
)

// Vocabulary pruning keeps every token that encoding the given text needs,
// not only those in the final encoding: BPE reaches a piece through
// intermediate merges, and each intermediate piece must stay or the merge
// chain breaks. Removing tokens that are never formed cannot change the
// encoding: at every step the merge the original tokenizer picks is still
// there and still the best-scored one among those left. The result is
// checked anyway: the pruned tokenizer must encode every traced text to the
// remapped ids of the original encoding.
//
// The same argument shows more: any text whose original encoding uses only
// kept tokens encodes identically (the intermediates of a final token are
// fixed by its own characters), not just the texts that were traced.

// vocabSegments are the ways a text is likely to be encoded: whole (with and
// without its final newline, as perplexity tools read files), document by
// document (<|endoftext|>-separated, trimmed, as per-document evaluation and
// calibration do) and line by line (prompts).
func vocabSegments(text string) []string {
	segs := []string{text, strings.TrimSuffix(text, "\n")}
	for _, doc := range strings.Split(text, pruneDocSep) {
		if doc = strings.TrimSpace(doc); doc != "" {
			segs = append(segs, doc)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if line != "" {
			segs = append(segs, line)
		}
	}
	return segs
}

// byteFallbackIDs finds the <0xXX> token core's tokenizer falls back to for
// every byte: the first six-character piece that decodes to that byte.
func byteFallbackIDs(t *core.Tokenizer) ([256]int, error) {
	var ids [256]int
	for i := range ids {
		ids[i] = -1
	}
	for id, p := range t.Vocab {
		if len(p) != 6 || !strings.HasPrefix(p, "<0x") {
			continue
		}
		if d := t.Decode(-1, id); len(d) == 1 && ids[d[0]] < 0 {
			ids[d[0]] = id
		}
	}
	for b, id := range ids {
		if id < 0 {
			return ids, fmt.Errorf("%w: the vocabulary has no byte-fallback token for byte 0x%02X; vocabulary pruning needs all 256", ErrPrune, b)
		}
	}
	return ids, nil
}

// VocabKeep reports which token ids encoding texts needs (every piece any
// merge step forms, see above), plus id 0 (<unk>), BOS, EOS and the 256
// byte-fallback tokens. Each text is traced whole, per document and per
// line (vocabSegments).
func VocabKeep(t *core.Tokenizer, texts []string) ([]bool, error) {
	byteIDs, err := byteFallbackIDs(t)
	if err != nil {
		return nil, err
	}
	keep := make([]bool, len(t.Vocab))
	keep[0], keep[t.BOS], keep[t.EOS] = true, true, true
	for _, id := range byteIDs {
		keep[id] = true
	}
	for id, p := range t.Vocab {
		if p == "<unk>" {
			keep[id] = true
		}
	}
	for _, text := range texts {
		for _, seg := range vocabSegments(text) {
			got := traceEncode(t, &byteIDs, seg, keep)
			if want := t.Encode(seg, false, false); !slices.Equal(got, want) {
				return nil, fmt.Errorf("%w: internal error: traced encoding differs from the tokenizer's on %.40q", ErrPrune, seg)
			}
		}
	}
	return keep, nil
}

// traceEncode encodes text as core.Tokenizer.Encode(text, false, false)
// does (dummy prefix, characters or byte fallback, best-scored merge first,
// leftmost on ties) and marks in used every id that appears on the way.
func traceEncode(t *core.Tokenizer, byteIDs *[256]int, text string, used []bool) []int {
	var tokens []int
	if text != "" {
		if id := t.Lookup(" "); id >= 0 {
			tokens = append(tokens, id)
		}
	}
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id := t.Lookup(text[i:j]); id >= 0 {
			tokens = append(tokens, id)
		} else {
			for k := i; k < j; k++ {
				tokens = append(tokens, byteIDs[text[k]])
			}
		}
		i = j
	}
	for _, id := range tokens {
		used[id] = true
	}
	n := len(tokens)
	if n < 2 {
		return tokens
	}
	next, prev := make([]int, n), make([]int, n)
	alive := make([]bool, n)
	for i := range tokens {
		next[i], prev[i], alive[i] = i+1, i-1, true
	}
	next[n-1] = -1
	q := &vocabPairs{}
	push := func(i int) {
		if i < 0 || next[i] < 0 {
			return
		}
		a, b := tokens[i], tokens[next[i]]
		id := t.Lookup(t.Vocab[a] + t.Vocab[b])
		if id < 0 || !(t.Scores[id] > -1e10) { // the reference's minimum merge score
			return
		}
		heap.Push(q, vocabPair{score: t.Scores[id], left: i, right: next[i], a: a, b: b, id: id})
	}
	for i := 0; i < n-1; i++ {
		push(i)
	}
	for q.Len() > 0 {
		pr := heap.Pop(q).(vocabPair)
		if !alive[pr.left] || !alive[pr.right] || next[pr.left] != pr.right || tokens[pr.left] != pr.a || tokens[pr.right] != pr.b {
			continue
		}
		tokens[pr.left] = pr.id
		used[pr.id] = true
		alive[pr.right] = false
		next[pr.left] = next[pr.right]
		if next[pr.right] >= 0 {
			prev[next[pr.right]] = pr.left
		}
		push(prev[pr.left])
		push(pr.left)
	}
	var out []int
	for i := 0; i >= 0; i = next[i] {
		out = append(out, tokens[i])
	}
	return out
}

type vocabPair struct {
	score       float32
	left, right int
	a, b, id    int
}

// vocabPairs orders candidate merges by score (highest first), then
// position (leftmost first).
type vocabPairs []vocabPair

func (q vocabPairs) Len() int { return len(q) }
func (q vocabPairs) Less(i, j int) bool {
	if q[i].score != q[j].score {
		return q[i].score > q[j].score
	}
	return q[i].left < q[j].left
}
func (q vocabPairs) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *vocabPairs) Push(x any)   { *q = append(*q, x.(vocabPair)) }
func (q *vocabPairs) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

// PruneVocabTokenizer builds the tokenizer of the kept ids (in their
// original order) and the map from old ids to new ones (-1 for removed).
func PruneVocabTokenizer(t *core.Tokenizer, keep []bool) (*core.Tokenizer, []int, error) {
	remap := make([]int, len(t.Vocab))
	var vocab []string
	var scores []float32
	for id, k := range keep {
		remap[id] = -1
		if k {
			remap[id] = len(vocab)
			vocab = append(vocab, t.Vocab[id])
			scores = append(scores, t.Scores[id])
		}
	}
	nt, err := core.NewTokenizer(vocab, scores, remap[t.BOS], remap[t.EOS])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrPrune, err)
	}
	return nt, remap, nil
}

// pruneVocab drops the tokens texts do not need: tokenizer entries and the
// matching rows of the embedding and classifier.
func (p *pModel) pruneVocab(texts []string) error {
	if p.tok == nil {
		return fmt.Errorf("%w: vocabulary pruning needs the model's tokenizer", ErrPrune)
	}
	keep, err := VocabKeep(p.tok, texts)
	if err != nil {
		return err
	}
	nt, remap, err := PruneVocabTokenizer(p.tok, keep)
	if err != nil {
		return err
	}
	var rows []int
	for id, k := range keep {
		if k {
			rows = append(rows, id)
		}
	}
	// the promise: every traced text encodes to the remapped original ids
	for _, text := range texts {
		for _, seg := range vocabSegments(text) {
			want := p.tok.Encode(seg, true, false)
			for i, id := range want {
				want[i] = remap[id]
			}
			if got := nt.Encode(seg, true, false); !slices.Equal(got, want) {
				return fmt.Errorf("%w: internal error: the pruned tokenizer encodes %.40q differently", ErrPrune, seg)
			}
		}
	}
	p.emb = prPickRows(p.emb, p.c.Dim, rows)
	if p.cls != nil {
		p.cls = prPickRows(p.cls, p.c.Dim, rows)
	}
	p.tok = nt
	p.c.VocabSize = len(rows)
	return nil
}
