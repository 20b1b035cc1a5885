package core

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// WordPiece is BERT's tokenizer with the semantics of llama.cpp's WPM
// tokenizer, which produced the GGUF files and the reference token ids mote
// is checked against:
//
//   - Each code point is replaced by the first code point of its canonical
//     decomposition (nfdRanges), which strips the accents of precomposed
//     letters (é -> e); a combining mark typed as such stays, as in
//     llama.cpp (so "cafe\u0301" is one unknown word, where Hugging Face's
//     tokenizer would drop the mark).
//   - Whitespace (Unicode White_Space) separates words; NUL, U+FFFD and
//     control and format characters (Cc, Cf, Co, Cs: zero-width space, soft
//     hyphen) are dropped; everything else is lowercased (simple mapping).
//   - Punctuation (P*), ASCII symbols (S* below U+007F) and CJK ideographs
//     are words of their own.
//   - Each word is matched greedily, longest piece first, against the
//     vocabulary: its first piece must be a word-start piece, the others
//     continuation pieces. A word with a position no piece matches becomes
//     one [UNK].
//
// The vocabulary is spelled as GGUF spells it: a word-start piece carries a
// U+2581 prefix ("▁cat"), a continuation piece has none ("ing", which
// Hugging Face writes "##ing"), and special tokens are literal ("[CLS]").
type WordPiece struct {
	Vocab   []string
	Special []int // ids of the special tokens: matched literally in text when asked to
	CLS     int   // starts every sequence
	SEP     int   // ends every sequence
	UNK     int   // stands for a word no pieces spell
	PAD     int   // -1 when the vocabulary has none
	MASK    int   // -1 when the vocabulary has none

	ids     map[string]int32
	maxLen  int   // longest piece, in bytes
	byLen   []int // Special, longest text first (llama.cpp's matching order)
	special []bool
}

// wordStart is the prefix of word-start pieces (U+2581, 3 bytes of UTF-8).
const wordStart = "\u2581"

// Tokenizer limits; far above BERT's, low enough to bound the search.
const (
	maxPieceBytes = 1 << 10
	maxSpecial    = 1 << 10
)

// NewWordPiece checks a vocabulary and indexes it. special lists the ids
// of the special (control) tokens; cls, sep and unk must be among the ids;
// pad and mask may be -1.
func NewWordPiece(vocab []string, special []int, cls, sep, unk, pad, mask int) (*WordPiece, error) {
	n := len(vocab)
	if n == 0 || n > MaxVocab {
		return nil, fmt.Errorf("%w: wordpiece vocabulary of %d pieces (1..%d)", ErrBadConfig, n, MaxVocab)
	}
	for _, c := range []struct {
		name string
		id   int
		opt  bool
	}{{"cls", cls, false}, {"sep", sep, false}, {"unk", unk, false}, {"pad", pad, true}, {"mask", mask, true}} {
		if c.opt && c.id == -1 {
			continue
		}
		if c.id < 0 || c.id >= n {
			return nil, fmt.Errorf("%w: %s token id %d outside the vocabulary of %d", ErrBadConfig, c.name, c.id, n)
		}
	}
	if len(special) > maxSpecial {
		return nil, fmt.Errorf("%w: %d special tokens (at most %d)", ErrBadConfig, len(special), maxSpecial)
	}
	t := &WordPiece{Vocab: vocab, Special: special, CLS: cls, SEP: sep, UNK: unk, PAD: pad, MASK: mask,
		ids: make(map[string]int32, n), special: make([]bool, n)}
	for _, id := range special {
		if id < 0 || id >= n {
			return nil, fmt.Errorf("%w: special token id %d outside the vocabulary of %d", ErrBadConfig, id, n)
		}
		if vocab[id] == "" {
			return nil, fmt.Errorf("%w: special token %d is empty", ErrBadConfig, id)
		}
		if !t.special[id] {
			t.special[id] = true
			t.byLen = append(t.byLen, id)
		}
	}
	slices.Sort(t.byLen)
	sort.SliceStable(t.byLen, func(i, j int) bool { return len(vocab[t.byLen[i]]) > len(vocab[t.byLen[j]]) })
	for i, p := range vocab {
		if len(p) > maxPieceBytes {
			return nil, fmt.Errorf("%w: piece %d has %d bytes (at most %d)", ErrBadConfig, i, len(p), maxPieceBytes)
		}
		if t.special[i] {
			continue // matched literally, never as a piece of a word
		}
		if _, dup := t.ids[p]; !dup { // the first of duplicates wins, as in llama.cpp
			t.ids[p] = int32(i)
		}
		t.maxLen = max(t.maxLen, len(p))
	}
	return t, nil
}

// IsSpecial reports whether id is a special token.
func (t *WordPiece) IsSpecial(id int) bool { return id >= 0 && id < len(t.special) && t.special[id] }

// Encode tokenizes text as [CLS] pieces... [SEP]. With parseSpecial, the
// special tokens' texts ("[SEP]", "[MASK]") in text are those tokens, as
// llama.cpp's tokenizer (and Hugging Face's) treat them; without it they
// are tokenized as text.
func (t *WordPiece) Encode(text string, parseSpecial bool) []int {
	out := make([]int, 0, len(text)/3+2)
	out = append(out, t.CLS)
	if !parseSpecial || len(t.byLen) == 0 {
		out = t.AppendPieces(out, text)
		return append(out, t.SEP)
	}
	// llama.cpp's partition: each special token in turn, longest first,
	// splits every stretch of text not yet claimed at each of its
	// occurrences, left to right
	frags := []fragment{{text: text, id: -1}}
	var next []fragment
	for _, s := range t.byLen {
		sp := t.Vocab[s]
		next = next[:0]
		for _, f := range frags {
			if f.id >= 0 {
				next = append(next, f)
				continue
			}
			rest := f.text
			for {
				k := strings.Index(rest, sp)
				if k < 0 {
					break
				}
				if k > 0 {
					next = append(next, fragment{text: rest[:k], id: -1})
				}
				next = append(next, fragment{id: s})
				rest = rest[k+len(sp):]
			}
			if rest != "" {
				next = append(next, fragment{text: rest, id: -1})
			}
		}
		frags, next = next, frags
	}
	for _, f := range frags {
		if f.id >= 0 {
			out = append(out, f.id)
		} else {
			out = t.AppendPieces(out, f.text)
		}
	}
	return append(out, t.SEP)
}

// fragment is a stretch of text still to tokenize (id -1) or a special token.
type fragment struct {
	text string
	id   int
}

// AppendPieces appends the pieces of text (no [CLS], [SEP] or special
// tokens) to dst.
func (t *WordPiece) AppendPieces(dst []int, text string) []int {
	var buf [64]byte
	word := append(buf[:0], wordStart...)
	for _, r := range text {
		r = nfdFirst(r)
		switch {
		case unicode.Is(unicode.White_Space, r):
			dst, word = t.flush(dst, word)
			continue
		case r == 0 || r == utf8.RuneError || isControl(r):
			continue
		}
		lower := unicode.ToLower(r)
		if unicode.IsPunct(r) || r < 0x7f && unicode.IsSymbol(r) || isCJK(r) {
			dst, word = t.flush(dst, word)
			word = utf8.AppendRune(word, lower)
			dst, word = t.flush(dst, word)
			continue
		}
		word = utf8.AppendRune(word, lower)
	}
	dst, _ = t.flush(dst, word)
	return dst
}

// flush tokenizes the word collected in w (after its U+2581 prefix), if
// any, and empties w.
func (t *WordPiece) flush(dst []int, w []byte) ([]int, []byte) {
	if len(w) == len(wordStart) {
		return dst, w
	}
	n0 := len(dst)
	for i := 0; i < len(w); {
		j := min(len(w), i+t.maxLen)
		for ; j > i; j-- {
			if id, ok := t.ids[string(w[i:j])]; ok { // no allocation: map index by converted bytes
				dst = append(dst, int(id))
				break
			}
		}
		if j == i {
			dst = append(dst[:n0], t.UNK)
			break
		}
		i = j
	}
	return dst, w[:len(wordStart)]
}

// Piece is token id's text as the vocabulary spells it.
func (t *WordPiece) Piece(id int) string {
	if id < 0 || id >= len(t.Vocab) {
		return ""
	}
	return t.Vocab[id]
}

// nfdFirst is the first code point of r's canonical decomposition.
func nfdFirst(r rune) rune {
	if r < 0xC0 {
		return r
	}
	i, found := slices.BinarySearchFunc(nfdRanges[:], uint32(r), func(e [3]uint32, x uint32) int {
		switch {
		case e[1] < x:
			return -1
		case e[0] > x:
			return 1
		}
		return 0
	})
	if !found {
		return r
	}
	return rune(nfdRanges[i][2])
}

// isControl is llama.cpp's control flag: general categories Cc, Cf, Co, Cs.
func isControl(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

// isCJK reports CJK ideographs, which BERT splits into words of their own.
// The ranges are llama.cpp's (and Hugging Face's Rust tokenizers'), including
// their start of 0x2B920 for the fifth block where Unicode's extension E
// begins at 0x2B820.
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF ||
		r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF ||
		r >= 0x2A700 && r <= 0x2B73F ||
		r >= 0x2B740 && r <= 0x2B81F ||
		r >= 0x2B920 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF ||
		r >= 0x2F800 && r <= 0x2FA1F
}
