package quant

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"mote/core"
	"mote/models"
)

var shared = filepath.Join("..", "..", "shared")

func sharedPath(parts ...string) string {
	return filepath.Join(append([]string{shared}, parts...)...)
}

// loadStories opens the fp32 reference model with its tokenizer.
func loadStories(t testing.TB) *core.Model {
	t.Helper()
	m, _, err := models.Open(sharedPath("models", "stories260K.bin"), sharedPath("models", "tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(sharedPath("models", "tinystories-valid-first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The reference perplexities of the issue: llama-perplexity's protocol at
// context 256, and llama2.c-style per-document scoring.
func TestReferencePerplexityCtx256(t *testing.T) {
	m := loadStories(t)
	toks := TextTokens(m.Tokenizer, readText(t))
	if len(toks) != 404018 {
		t.Fatalf("%d tokens, want 404018", len(toks))
	}
	segs, err := ChunkSegments(toks, 256, m.Tokenizer.BOS)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1578 {
		t.Fatalf("%d chunks, want 1578", len(segs))
	}
	r, err := Evaluate(m, nil, segs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Scored != 200406 {
		t.Errorf("%d scored, want 200406", r.Scored)
	}
	// llama.cpp prints 7.7946; its CPU backend keeps the KV cache in fp16
	// and sums in another order, which moves the 5th significant digit.
	// A protocol slip (one chunk, one position, BOS) moves the 3rd.
	const tol = 2e-4
	if math.Abs(r.PPL-7.7946) > tol {
		t.Errorf("PPL %.6f, want 7.7946", r.PPL)
	}
	t.Logf("PPL %.6f NLL %.6f", r.PPL, r.NLL)
}

func BenchmarkForwardCtx256(b *testing.B) {
	m := loadStories(b)
	s := m.NewState(256)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Forward(s, 100+i%200, i%255)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}

func TestReferencePerplexityDocs(t *testing.T) {
	m := loadStories(t)
	segs, err := DocSegments(m.Tokenizer, readText(t), 512)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Evaluate(m, nil, segs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Scored != 369992 {
		t.Errorf("%d scored, want 369992", r.Scored)
	}
	t.Logf("PPL %.6f NLL %.6f", r.PPL, r.NLL)
	const tol = 5e-7 // the reference gives the mean NLL to 6 decimals
	if math.Abs(r.NLL-1.513458) > tol {
		t.Errorf("NLL %.7f, want 1.513458", r.NLL)
	}
}

// llama-perplexity's chunking: whole chunks only, BOS written over position
// 0, the second half scored; the token stream itself is not changed.
func TestChunkSegments(t *testing.T) {
	toks := make([]int, 1000)
	for i := range toks {
		toks[i] = 10 + i%300
	}
	segs, err := ChunkSegments(toks, 256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 3 {
		t.Fatalf("%d chunks of 256 in 1000 tokens", len(segs))
	}
	for c, s := range segs {
		if len(s.Tokens) != 256 || s.Tokens[0] != 1 || s.First != 128 || s.Scored() != 127 {
			t.Errorf("chunk %d: %d tokens, first %d, scored from %d (%d)", c, len(s.Tokens), s.Tokens[0], s.First, s.Scored())
		}
		for i := 1; i < 256; i++ {
			if s.Tokens[i] != toks[c*256+i] {
				t.Fatalf("chunk %d token %d changed", c, i)
			}
		}
	}
	if toks[0] != 10 {
		t.Error("the caller's tokens were overwritten")
	}
	for _, n := range []int{0, 2} {
		if _, err := ChunkSegments(toks, n, 1); err == nil {
			t.Errorf("context %d accepted", n)
		}
	}
	if _, err := ChunkSegments(toks[:100], 256, 1); err == nil {
		t.Error("a text shorter than one chunk accepted")
	}
}

func TestDocSegments(t *testing.T) {
	m := loadStories(t)
	text := "  One day, a cat sat.\n<|endoftext|>\n\n<|endoftext|>\nThe dog ran and ran and ran and ran.  \n"
	segs, err := DocSegments(m.Tokenizer, text, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 {
		t.Fatalf("%d documents", len(segs))
	}
	want := m.Tokenizer.Encode("One day, a cat sat.", true, false)
	if len(segs[0].Tokens) != min(5, len(want)) || segs[0].Tokens[0] != m.Tokenizer.BOS || segs[0].First != 0 {
		t.Errorf("document 0: %v (want a prefix of %v)", segs[0].Tokens, want)
	}
	for i, tok := range segs[0].Tokens {
		if tok != want[i] {
			t.Errorf("document 0 token %d: %d, want %d", i, tok, want[i])
		}
	}
	if len(segs[1].Tokens) != 5 {
		t.Errorf("document 1 not truncated to 5: %d", len(segs[1].Tokens))
	}
}

// A model against itself: every figure is exact, whatever the workers.
func TestEvaluateSelf(t *testing.T) {
	m := loadStories(t)
	segs, err := ChunkSegments(TextTokens(m.Tokenizer, readText(t)[:8000]), 128, m.Tokenizer.BOS)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := Evaluate(m, m, segs, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	r3, err := Evaluate(m, m, segs, Options{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r1.KLDMean != 0 || r1.KLDMax != 0 || r1.Top1 != 1 || r1.RMSDp != 0 || r1.LnRatio != 0 || r1.PPL != r1.BasePPL {
		t.Errorf("self-comparison: %+v", r1)
	}
	if *r1 != *r3 {
		t.Errorf("1 worker %+v\n3 workers %+v", r1, r3)
	}
	if r1.Scored != len(segs)*63 || !(r1.PPL > 1 && r1.PPL < 20) {
		t.Errorf("scored %d, PPL %g", r1.Scored, r1.PPL)
	}
}
