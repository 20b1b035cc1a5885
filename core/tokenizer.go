package core

import (
	"container/heap"
	"errors"
	"fmt"
)

// Tokenizer is a SentencePiece-style BPE vocabulary with llama2.c's encode
// and decode semantics: merges by highest score, a dummy-prefix space,
// byte fallback to <0xXX> tokens, and BOS/EOS ids.
type Tokenizer struct {
	Vocab          []string  // piece text, spaces as ' ' (not U+2581)
	Scores         []float32 // merge priority; higher merges first
	MaxTokenLength int
	BOS, EOS       int

	lookup     map[string]int // first id of each piece
	byteTokens [256]int       // id of <0xXX>, or -1
	bytePieces [256]string    // single-byte strings, for decoding <0xXX>
	byteOf     []int16        // byte value a piece decodes to, or -1
}

// ErrTokenizer reports an unusable vocabulary.
var ErrTokenizer = errors.New("bad tokenizer")

// NewTokenizer indexes a vocabulary. Duplicate pieces keep their first id.
func NewTokenizer(vocab []string, scores []float32, bos, eos int) (*Tokenizer, error) {
	if len(vocab) == 0 || len(vocab) != len(scores) {
		return nil, fmt.Errorf("%w: %d pieces, %d scores", ErrTokenizer, len(vocab), len(scores))
	}
	if bos < 0 || bos >= len(vocab) || eos < 0 || eos >= len(vocab) {
		return nil, fmt.Errorf("%w: bos %d / eos %d outside vocab of %d", ErrTokenizer, bos, eos, len(vocab))
	}
	t := &Tokenizer{Vocab: vocab, Scores: scores, BOS: bos, EOS: eos,
		lookup: make(map[string]int, len(vocab)), byteOf: make([]int16, len(vocab))}
	for i := range t.byteTokens {
		t.byteTokens[i] = -1
		t.bytePieces[i] = string([]byte{byte(i)})
	}
	for id, p := range vocab {
		t.MaxTokenLength = max(t.MaxTokenLength, len(p))
		if _, ok := t.lookup[p]; !ok {
			t.lookup[p] = id
		}
		t.byteOf[id] = -1
		if b, ok := parseByteToken(p); ok {
			t.byteOf[id] = int16(b)
			if len(p) == 6 && t.byteTokens[b] < 0 {
				t.byteTokens[b] = id
			}
		}
	}
	return t, nil
}

// parseByteToken reads "<0xXX>" the way llama2.c's sscanf("<0x%02hhX>") does:
// the prefix and one or two hex digits suffice.
func parseByteToken(p string) (byte, bool) {
	if len(p) < 4 || p[:3] != "<0x" {
		return 0, false
	}
	var v, n int
	for _, c := range []byte(p[3:min(len(p), 5)]) {
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'a' && c <= 'f':
			d = int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = int(c-'A') + 10
		default:
			return byte(v), n > 0
		}
		v = v*16 + d
		n++
	}
	return byte(v), n > 0
}

// Lookup returns the id of a piece, or -1.
func (t *Tokenizer) Lookup(piece string) int {
	if id, ok := t.lookup[piece]; ok {
		return id
	}
	return -1
}

// Decode returns the text of token following prev, as llama2.c's decode:
// after BOS a leading space is dropped; <0xXX> pieces become their byte.
// It does not allocate.
func (t *Tokenizer) Decode(prev, token int) string {
	piece := t.Vocab[token]
	if prev == t.BOS && len(piece) > 0 && piece[0] == ' ' {
		piece = piece[1:]
	}
	if b := t.byteOf[token]; b >= 0 {
		piece = t.bytePieces[b]
	}
	return piece
}

// SafePiece returns the piece unless it is a single byte that is neither
// printable nor whitespace (llama2.c's safe_printf), in which case "".
func SafePiece(piece string) string {
	if len(piece) == 1 {
		b := piece[0]
		if !(b >= 0x20 && b <= 0x7e || b >= 0x09 && b <= 0x0d) {
			return ""
		}
	}
	return piece
}

// Encode tokenizes text as llama2.c's encode: optional BOS, a dummy-prefix
// " " token when text is not empty, one token per UTF-8 character (or its
// bytes as <0xXX> tokens), then repeated merging of the adjacent pair whose
// merged piece has the highest score (leftmost on ties), optional EOS.
//
// The reference rescans all pairs after every merge (quadratic); this uses a
// priority queue over pairs ordered by (score desc, position asc), which
// picks the same pair at every step and so yields the same ids.
func (t *Tokenizer) Encode(text string, bos, eos bool) []int {
	var tokens []int
	if bos {
		tokens = append(tokens, t.BOS)
	}
	tokens = t.appendDummyPrefix(tokens, text)
	tokens = t.appendChars(tokens, text)
	tokens = t.merge(tokens)
	if eos {
		tokens = append(tokens, t.EOS)
	}
	return tokens
}

// appendDummyPrefix adds SentencePiece's leading-space token before a
// non-empty text. (The reference would add id -1 when the vocabulary has no
// " " piece; mote adds nothing then.)
func (t *Tokenizer) appendDummyPrefix(tokens []int, text string) []int {
	if text == "" {
		return tokens
	}
	if id := t.Lookup(" "); id >= 0 {
		tokens = append(tokens, id)
	}
	return tokens
}

// appendChars adds one token per UTF-8 sequence (at most 4 bytes, as the
// reference cuts them), or byte-fallback tokens when the sequence is unknown.
func (t *Tokenizer) appendChars(tokens []int, text string) []int {
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id := t.Lookup(text[i:j]); id >= 0 {
			tokens = append(tokens, id)
		} else {
			for k := i; k < j; k++ {
				tokens = append(tokens, t.byteID(text[k]))
			}
		}
		i = j
	}
	return tokens
}

// byteID is the reference's fallback id: byte + 3 (its vocabularies put
// <0x00>..<0xFF> at ids 3..258); when this vocabulary says otherwise, its
// own <0xXX> token is used.
func (t *Tokenizer) byteID(b byte) int {
	if id := t.byteTokens[b]; id >= 0 {
		return id
	}
	return int(b) + 3
}

// merge applies BPE merges with a priority queue; see Encode.
func (t *Tokenizer) merge(tokens []int) []int {
	n := len(tokens)
	if n < 2 {
		return tokens
	}
	// symbols form a doubly linked list in original order; ids change as they merge.
	prev := make([]int, n)
	next := make([]int, n)
	alive := make([]bool, n)
	for i := range tokens {
		prev[i], next[i], alive[i] = i-1, i+1, true
	}
	next[n-1] = -1
	var buf []byte
	pq := &pairQueue{}
	push := func(i int) {
		j := next[i]
		if i < 0 || j < 0 {
			return
		}
		a, b := tokens[i], tokens[j]
		if a < 0 || b < 0 || a >= len(t.Vocab) || b >= len(t.Vocab) {
			return
		}
		buf = append(append(buf[:0], t.Vocab[a]...), t.Vocab[b]...)
		id, ok := t.lookup[string(buf)]
		if !ok || !(t.Scores[id] > minMergeScore) {
			return
		}
		heap.Push(pq, pair{score: t.Scores[id], left: i, right: j, a: a, b: b, id: id})
	}
	for i := 0; i < n-1; i++ {
		push(i)
	}
	for pq.Len() > 0 {
		p := heap.Pop(pq).(pair)
		// stale: a side merged away or changed since the pair was queued
		if !alive[p.left] || !alive[p.right] || next[p.left] != p.right ||
			tokens[p.left] != p.a || tokens[p.right] != p.b {
			continue
		}
		tokens[p.left] = p.id
		alive[p.right] = false
		next[p.left] = next[p.right]
		if next[p.right] >= 0 {
			prev[next[p.right]] = p.left
		}
		if prev[p.left] >= 0 {
			push(prev[p.left])
		}
		push(p.left)
	}
	out := tokens[:0]
	for i := 0; i >= 0; i = next[i] {
		out = append(out, tokens[i])
	}
	return out
}

// EncodeRef is the reference's quadratic merge loop, kept as the
// specification that Encode is tested against.
func (t *Tokenizer) EncodeRef(text string, bos, eos bool) []int {
	var tokens []int
	if bos {
		tokens = append(tokens, t.BOS)
	}
	tokens = t.appendDummyPrefix(tokens, text)
	tokens = t.appendChars(tokens, text)
	for {
		bestScore, bestID, bestIdx := float32(minMergeScore), -1, -1
		for i := 0; i+1 < len(tokens); i++ {
			a, b := tokens[i], tokens[i+1]
			if a < 0 || b < 0 || a >= len(t.Vocab) || b >= len(t.Vocab) {
				continue
			}
			id := t.Lookup(t.Vocab[a] + t.Vocab[b])
			if id >= 0 && t.Scores[id] > bestScore {
				bestScore, bestID, bestIdx = t.Scores[id], id, i
			}
		}
		if bestIdx < 0 {
			break
		}
		tokens[bestIdx] = bestID
		tokens = append(tokens[:bestIdx+1], tokens[bestIdx+2:]...)
	}
	if eos {
		tokens = append(tokens, t.EOS)
	}
	return tokens
}

// minMergeScore is the reference's initial best score: pieces scored at or
// below it are never merged.
const minMergeScore = -1e10

type pair struct {
	score       float32
	left, right int // positions in the original sequence
	a, b, id    int // ids when queued, and the merged id
}

type pairQueue []pair

func (q pairQueue) Len() int { return len(q) }
func (q pairQueue) Less(i, j int) bool {
	if q[i].score != q[j].score {
		return q[i].score > q[j].score
	}
	return q[i].left < q[j].left
}
func (q pairQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pairQueue) Push(x any)   { *q = append(*q, x.(pair)) }
func (q *pairQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}
