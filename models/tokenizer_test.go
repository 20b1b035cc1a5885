package models

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mote/core"
)

var shared = filepath.Join("..", "..", "shared")

func sharedPath(parts ...string) string {
	return filepath.Join(append([]string{shared}, parts...)...)
}

func openTokenizer(t testing.TB, name string, n int) *core.Tokenizer {
	t.Helper()
	f, err := os.Open(sharedPath("models", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tok, err := ReadTokenizer(name, f, st.Size(), n)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The priority-queue merge must give the reference's quadratic merge ids.
func TestEncodeMatchesReferenceMerge(t *testing.T) {
	text, err := os.ReadFile(sharedPath("models", "tinystories-valid-first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(text), "\n")
	extra := []string{"", " ", "  leading spaces", "naïve café 日本語 🙂 \x01\xff", "Once upon a time", "<|endoftext|>"}
	for _, tc := range []struct {
		file string
		n    int
	}{{"tok512.bin", 512}, {"tokenizer.bin", 32000}} {
		tok := openTokenizer(t, tc.file, tc.n)
		cases := append(slices.Clone(extra), lines[:300]...)
		for _, s := range cases {
			for _, bos := range []bool{false, true} {
				got, want := tok.Encode(s, bos, !bos), tok.EncodeRef(s, bos, !bos)
				if !slices.Equal(got, want) {
					t.Fatalf("%s %q: %v != %v", tc.file, s, got, want)
				}
			}
		}
	}
}

// Known ids: llama2.c encodes "Once upon a time" for stories260K as these
// (BOS, then the pieces whose decoded text rebuilds the prompt).
func TestEncodeDecodeRoundTrip(t *testing.T) {
	tok := openTokenizer(t, "tok512.bin", 512)
	for _, s := range []string{"Once upon a time", "Lily and Ben", "x\ny", "日本"} {
		ids := tok.Encode(s, true, false)
		if ids[0] != 1 {
			t.Fatalf("no BOS: %v", ids)
		}
		var b strings.Builder
		for i := 1; i < len(ids); i++ {
			b.WriteString(tok.Decode(ids[i-1], ids[i]))
		}
		if b.String() != s {
			t.Errorf("%q -> %v -> %q", s, ids, b.String())
		}
	}
	// the whole 800 KB evaluation text encodes in well under a second
	text, _ := os.ReadFile(sharedPath("models", "tinystories-valid-first1000.txt"))
	ids := tok.Encode(string(text), true, false)
	if len(ids) < 100000 {
		t.Fatalf("only %d tokens", len(ids))
	}
}

func TestSafePiece(t *testing.T) {
	for in, want := range map[string]string{"a": "a", "\n": "\n", "\x01": "", "\xff": "", "ab": "ab", "": ""} {
		if got := core.SafePiece(in); got != want {
			t.Errorf("SafePiece(%q) = %q", in, got)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	tok := openTokenizer(b, "tok512.bin", 512)
	text, _ := os.ReadFile(sharedPath("models", "tinystories-valid-first1000.txt"))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(string(text), true, false)
	}
}
