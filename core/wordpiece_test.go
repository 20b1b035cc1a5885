package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A toy vocabulary in GGUF's spelling: "▁" starts a word, pieces without it
// continue one (the reference ids against the real vocabulary are tested in
// models, with the model file).
var toyVocab = []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
	"▁un", "▁unaffable", "aff", "able", "▁the", "▁cat", "s", "▁,", "▁!", "▁'", "▁t",
	"▁東", "▁京", "▁cafe", "▁a", "▁e", "i", "▁+", "▁$", "▁3", "▁ÿ", "▁ﬁ", "ne", "▁$$"}

func toyTokenizer(t *testing.T) *WordPiece {
	t.Helper()
	wp, err := NewWordPiece(toyVocab, []int{0, 1, 2, 3, 4}, 2, 3, 1, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	return wp
}

func pieces(wp *WordPiece, ids []int) string {
	var s []string
	for _, id := range ids {
		s = append(s, wp.Piece(id))
	}
	return strings.Join(s, " ")
}

func TestWordPieceToy(t *testing.T) {
	wp := toyTokenizer(t)
	for _, c := range []struct{ text, want string }{
		{"", "[CLS] [SEP]"},
		{"  \t\n ", "[CLS] [SEP]"},
		{"unaffable", "[CLS] ▁unaffable [SEP]"},               // the longest piece wins
		{"unaffables", "[CLS] ▁unaffable s [SEP]"},            // then continuation pieces
		{"unable", "[CLS] ▁un able [SEP]"},                    // greedy, left to right
		{"unx cats", "[CLS] [UNK] ▁cat s [SEP]"},              // an unmatched position: the whole word is [UNK]
		{"The CATS!", "[CLS] ▁the ▁cat s ▁! [SEP]"},           // lowercase; punctuation is a word
		{"cat't", "[CLS] ▁cat ▁' ▁t [SEP]"},                   // ' splits (the t is a word-start piece)
		{"cat,cat", "[CLS] ▁cat ▁, ▁cat [SEP]"},               // no space needed around punctuation
		{"東京", "[CLS] ▁東 ▁京 [SEP]"},                           // CJK ideographs are words of their own
		{"Café", "[CLS] ▁cafe [SEP]"},                         // precomposed accents are stripped
		{"cafe\u0301", "[CLS] [UNK] [SEP]"},                   // a combining mark stays (llama.cpp's NFD table)
		{"ÀÉÎ", "[CLS] [UNK] [SEP]"},                          // "aei": no continuation piece "ei" or "e" after ▁a
		{"a\u200be", "[CLS] [UNK] [SEP]"},                     // format characters vanish: "ae"
		{"a\u00a0e", "[CLS] ▁a ▁e [SEP]"},                     // no-break space separates
		{"a\x00e\ufffd", "[CLS] [UNK] [SEP]"},                 // NUL and U+FFFD vanish
		{"a+3", "[CLS] ▁a ▁+ ▁3 [SEP]"},                       // ASCII symbols split
		{"$$", "[CLS] ▁$ ▁$ [SEP]"},                           // one character each, though "▁$$" exists
		{"ÿ", "[CLS] [UNK] [SEP]"},                            // U+00FF becomes "y", which has no piece ("▁ÿ" never matches)
		{"ﬁne", "[CLS] ▁ﬁ ne [SEP]"},                          // compatibility ligatures stay (NFD, not NFKD)
		{"[CLS]x[SEP]", "[CLS] [CLS] [UNK] [SEP] [SEP]"},      // special tokens in text
		{"[MASK][MASK]", "[CLS] [MASK] [MASK] [SEP]"},         // back to back
		{"un[PAD]able", "[CLS] ▁un [PAD] [UNK] [SEP]"},        // a special token splits a word
		{"invalid \xff utf8", "[CLS] [UNK] [UNK] [SEP]"},      // bad bytes vanish like U+FFFD
		{"\u2028cat\u3000cat\u0085", "[CLS] ▁cat ▁cat [SEP]"}, // other White_Space
	} {
		got := pieces(wp, wp.Encode(c.text, true))
		if got != c.want {
			t.Errorf("Encode(%q) = %s, want %s", c.text, got, c.want)
		}
	}
	// without special parsing, "[CLS]" is text: "[" "cls" "]" (unknown here)
	got := pieces(wp, wp.Encode("[CLS]", false))
	if got != "[CLS] [UNK] [UNK] [UNK] [SEP]" {
		t.Errorf("Encode([CLS], no special) = %s", got)
	}
}

func TestWordPieceAppendPieces(t *testing.T) {
	wp := toyTokenizer(t)
	dst := []int{42}
	dst = wp.AppendPieces(dst, "the cats")
	if want := []int{42, 9, 10, 11}; !slices.Equal(dst, want) {
		t.Errorf("AppendPieces = %v, want %v", dst, want)
	}
}

func TestWordPieceBadVocab(t *testing.T) {
	for _, c := range []struct {
		name    string
		vocab   []string
		special []int
		ids     [5]int
	}{
		{"empty", nil, nil, [5]int{0, 0, 0, -1, -1}},
		{"cls outside", toyVocab, nil, [5]int{99, 3, 1, -1, -1}},
		{"unk negative", toyVocab, nil, [5]int{2, 3, -1, -1, -1}},
		{"pad outside", toyVocab, nil, [5]int{2, 3, 1, 100, -1}},
		{"special outside", toyVocab, []int{1000}, [5]int{2, 3, 1, -1, -1}},
		{"empty special", []string{"", "a", "b"}, []int{0}, [5]int{1, 2, 1, -1, -1}},
		{"long piece", []string{"a", "b", strings.Repeat("x", maxPieceBytes+1)}, nil, [5]int{0, 1, 0, -1, -1}},
	} {
		if _, err := NewWordPiece(c.vocab, c.special, c.ids[0], c.ids[1], c.ids[2], c.ids[3], c.ids[4]); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func TestNFDFirst(t *testing.T) {
	for _, c := range []struct{ in, want rune }{
		{'a', 'a'}, {'é', 'e'}, {'É', 'E'}, {'ǖ', 'u'}, // ǖ = ü + macron: the first code point of the full decomposition
		{'가', 0x1100}, {'힣', 0x1112}, {'Å', 'A'}, {0x212B, 'A'}, // Hangul; the Ångström sign
		{'ﬁ', 'ﬁ'}, {'²', '²'}, {0x1F642, 0x1F642}, {0x10FFFF, 0x10FFFF},
	} {
		if got := nfdFirst(c.in); got != c.want {
			t.Errorf("nfdFirst(%U) = %U, want %U", c.in, got, c.want)
		}
	}
	for i := 1; i < len(nfdRanges); i++ {
		if nfdRanges[i][0] <= nfdRanges[i-1][1] || nfdRanges[i][0] > nfdRanges[i][1] {
			t.Fatalf("nfdRanges not sorted and disjoint at %d: %v %v", i, nfdRanges[i-1], nfdRanges[i])
		}
	}
}

func BenchmarkWordPiece(b *testing.B) {
	vocab := append([]string(nil), toyVocab...)
	for i := 0; i < 20000; i++ {
		vocab = append(vocab, fmt.Sprintf("▁w%d", i), fmt.Sprintf("p%d", i))
	}
	wp, err := NewWordPiece(vocab, []int{0, 1, 2, 3, 4}, 2, 3, 1, 0, 4)
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("The cats, unaffable! w123p45 w77 café 東京 ", 20)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		wp.Encode(text, true)
	}
}
