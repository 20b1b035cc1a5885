package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"mote/core"
	"mote/internal/testmodels"
	"mote/models"
)

// The real encoder, all-MiniLM-L6-v2 Q4_K_M from a Go module's testdata
// (see models/gguf_bert_test.go; the module cache holds it once fetched).
func miniLMBytes(t testing.TB) []byte {
	t.Helper()
	b, err := testmodels.MiniLMBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	embOnce   sync.Once
	embShared *Embedder
	embErr    error
)

// sharedEmbedder has "minilm" loaded (once per test binary).
func sharedEmbedder(t testing.TB) *Embedder {
	data := miniLMBytes(t)
	embOnce.Do(func() {
		embShared = NewEmbedder(EmbedLimits{MaxInputs: 8, MaxInputBytes: 4000, MaxTotalTokens: 1200}, nil)
		_, embErr = embShared.Load("minilm", data)
	})
	if embErr != nil {
		t.Fatal(embErr)
	}
	return embShared
}

func TestEmbedMatchesCore(t *testing.T) {
	e := sharedEmbedder(t)
	texts := []string{"The cat sat on the mat.", "", "Quantized language models can run in a web browser."}
	r, err := e.Embed("minilm", texts, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := models.ReadEncoderBytes("minilm", miniLMBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	s := m.NewState(0)
	total := 0
	for i, text := range texts {
		toks := m.Tokenizer.Encode(text, true)
		want := make([]float32, m.Config.Dim)
		m.Embed(s, toks, want)
		for j := range want {
			if math.Float32bits(want[j]) != math.Float32bits(r.Vectors[i][j]) {
				t.Fatalf("text %d: value %d %v, core gives %v", i, j, r.Vectors[i][j], want[j])
			}
		}
		if r.Tokens[i] != len(toks) || r.Truncated[i] {
			t.Errorf("text %d: %d tokens (truncated %v), want %d", i, r.Tokens[i], r.Truncated[i], len(toks))
		}
		total += len(toks)
	}
	if r.TotalTokens != total || r.Tokens[1] != 2 {
		t.Errorf("total %d, want %d; empty text %d tokens", r.TotalTokens, total, r.Tokens[1])
	}
	// similar sentences are closer than unrelated ones
	r2, _ := e.Embed("minilm", []string{"A cat is sitting on a rug.", "Stock markets fell sharply today."}, EmbedOptions{})
	if a, b := core.Cosine(r.Vectors[0], r2.Vectors[0]), core.Cosine(r.Vectors[0], r2.Vectors[1]); a < b+0.3 {
		t.Errorf("cat/cat %.3f vs cat/stocks %.3f", a, b)
	}
}

func TestEmbedLimits(t *testing.T) {
	e := sharedEmbedder(t)
	long := strings.Repeat("word ", 600) // 602 tokens > 512
	for _, c := range []struct {
		name  string
		texts []string
		o     EmbedOptions
		want  error
		what  string
	}{
		{"none", nil, EmbedOptions{}, ErrBadInput, "no input"},
		{"many", make([]string, 9), EmbedOptions{}, ErrLimit, "9 input texts"},
		{"bytes", []string{strings.Repeat("x", 4001)}, EmbedOptions{}, ErrBadInput, "4001 bytes"},
		{"utf8", []string{"ok", "\xff"}, EmbedOptions{}, ErrBadInput, "input 1 is not valid UTF-8"},
		{"context", []string{long[:2999]}, EmbedOptions{}, ErrLimit, "more than the model's context of 512"},
		{"total", []string{long[:2000], long[:2000], long[:2000]}, EmbedOptions{}, ErrLimit, "more than 1200 tokens"},
	} {
		_, err := e.Embed("minilm", c.texts, c.o)
		if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.what) {
			t.Errorf("%s: error %v, want %v saying %q", c.name, err, c.want, c.what)
		}
	}
	r, err := e.Embed("minilm", []string{long[:2999]}, EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Tokens[0] != 512 || !r.Truncated[0] {
		t.Errorf("truncated to %d tokens (%v)", r.Tokens[0], r.Truncated[0])
	}
	if _, err := e.Embed("nope", []string{"x"}, EmbedOptions{}); !errors.Is(err, ErrNoModel) {
		t.Errorf("unknown model: %v", err)
	}
	// special tokens: parsed by default, literal on request
	a, _ := e.Tokenize("minilm", "[MASK]", EmbedOptions{})
	b, _ := e.Tokenize("minilm", "[MASK]", EmbedOptions{Literal: true})
	if len(a) != 3 || a[1] != 103 || len(b) <= 3 {
		t.Errorf("[MASK] tokenized as %v, literally %v", a, b)
	}
}

func TestEmbedderModels(t *testing.T) {
	data := miniLMBytes(t)
	e := NewEmbedder(EmbedLimits{MaxModels: 1}, nil)
	info, err := e.Load("a", data)
	if err != nil {
		t.Fatal(err)
	}
	want := EncoderInfo{Name: "a", Config: info.Config, Format: models.FormatGGUF, Version: 3, FileBytes: int64(len(data)),
		Compress: "none", Checksums: "none", Params: 22_565_376, DType: "q8", GroupSize: 32, ActGroup: 32, Dim: 384, MaxTokens: 512}
	if info != want {
		t.Errorf("info %+v\nwant %+v", info, want)
	}
	if _, err := e.Load("b", data); !errors.Is(err, ErrLimit) {
		t.Errorf("second model over the limit: %v", err)
	}
	if _, err := e.Load("a", data); !errors.Is(err, ErrExists) {
		t.Errorf("same name: %v", err)
	}
	if ms := e.Models(); len(ms) != 1 || ms[0].Name != "a" {
		t.Errorf("Models() = %+v", ms)
	}
	if err := e.Unload("a"); err != nil || e.Unload("a") == nil {
		t.Errorf("Unload: %v", err)
	}
	// a container written from it loads too, and embeds the same
	m, mi, _ := models.ReadEncoderBytes("m", data)
	var buf bytes.Buffer
	if err := models.WriteEncoder(&buf, m, models.WriteOptions{Compression: models.CompressZstd}); err != nil {
		t.Fatal(err)
	}
	ci, err := e.Load("c", buf.Bytes())
	if err != nil || ci.Format != models.FormatMote || ci.Checksums != "verified" {
		t.Fatalf("container: %+v %v", ci, err)
	}
	e.Unload("c")
	if _, err := e.Add("d", m, mi); err != nil {
		t.Fatal(err)
	}
	x, _ := e.Embed("d", []string{"hello"}, EmbedOptions{})
	y, _ := sharedEmbedder(t).Embed("minilm", []string{"hello"}, EmbedOptions{})
	if core.Cosine(x.Vectors[0], y.Vectors[0]) != 1 {
		t.Error("Add and Load embed differently")
	}
	e.Unload("d")
	// bad bytes are a models.Error
	var me *models.Error
	if _, err := e.Load("z", []byte("GGUF....")); !errors.As(err, &me) {
		t.Errorf("bad bytes: %v", err)
	}
	if _, err := e.Load("", data); !errors.Is(err, ErrBadInput) {
		t.Errorf("empty name: %v", err)
	}
}

func TestBenchEmbed(t *testing.T) {
	e := sharedEmbedder(t)
	b, err := e.BenchEmbed("minilm", "The cat sat on the mat.", 2)
	if err != nil {
		t.Fatal(err)
	}
	if b.Tokens != 9 || b.Runs != 2 || b.PerSecond <= 0 || b.MsPerTok <= 0 {
		t.Errorf("%+v", b)
	}
	if _, err := e.BenchEmbed("minilm", "x", 0); !errors.Is(err, ErrBadInput) {
		t.Errorf("0 runs: %v", err)
	}
}

// BenchmarkEmbed reports embeddings per second for a 12-token sentence and
// a 128-token paragraph, one core (see docs/EMBED.md for all targets).
func BenchmarkEmbed(b *testing.B) {
	e := sharedEmbedder(b)
	for _, c := range benchTexts {
		b.Run(fmt.Sprintf("tokens=%d", c.tokens), func(b *testing.B) {
			toks, _ := e.Tokenize("minilm", c.text, EmbedOptions{})
			if len(toks) != c.tokens {
				b.Fatalf("%d tokens, want %d", len(toks), c.tokens)
			}
			in := []string{c.text}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Embed("minilm", in, EmbedOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emb/s")
		})
	}
}

// benchTexts are the benchmark inputs of docs/EMBED.md: a 12-token
// sentence and a 128-token paragraph (from TinyStories' validation set).
var benchTexts = []struct {
	text   string
	tokens int
}{
	{BenchSentence, 12},
	{BenchParagraph, 128},
}

func TestZeroShotAndClassify(t *testing.T) {
	e := sharedEmbedder(t)
	probs, err := e.ZeroShot("minilm", []string{"The striker scored in the final.", "The senate passed the bill."},
		[]string{"sports", "politics"}, DefaultTemplate, DefaultZeroShotTemp, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if probs[0][0] < 0.5 || probs[1][1] < 0.5 || math.Abs(float64(probs[0][0]+probs[0][1])-1) > 1e-5 {
		t.Errorf("zero-shot %v", probs)
	}
	for _, bad := range []struct {
		labels []string
		temp   float32
	}{{[]string{"one"}, 0.05}, {[]string{"a", " "}, 0.05}, {[]string{"a", "b"}, 0}} {
		if _, err := e.ZeroShot("minilm", []string{"x"}, bad.labels, "", bad.temp, EmbedOptions{}); !errors.Is(err, ErrBadInput) {
			t.Errorf("zero-shot %v at %v: %v", bad.labels, bad.temp, err)
		}
	}
	// a head trained here on a few examples classifies through Classify
	var data []LabeledText
	for _, s := range []string{"a cat", "the dog barked", "a little bird sang", "the horse ran", "a fish swam", "the cow ate grass"} {
		data = append(data, LabeledText{"animal", s})
	}
	for _, s := range []string{"the car engine", "a fast train", "the plane landed", "a red bicycle", "the truck drove", "a small boat sailed"} {
		data = append(data, LabeledText{"vehicle", s})
	}
	head, r, err := e.TrainHead("minilm", data, TrainConfig{Split: 0.75, Seed: 3, MaxTokens: 16})
	if err != nil {
		t.Fatal(err)
	}
	if r.Train != 9 || r.Test != 3 || len(r.Labels) != 2 || r.Labels[0] != "animal" || len(r.Confusion) != 2 {
		t.Errorf("report %+v", r)
	}
	p, err := e.Classify("minilm", head, []string{"a sheep", "a motorcycle"}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p[0][0] < 0.5 || p[1][1] < 0.5 {
		t.Errorf("head probabilities %v", p)
	}
	bad := *head
	bad.Dim, bad.W = 3, make([]float32, 6)
	if _, err := e.Classify("minilm", &bad, []string{"x"}, EmbedOptions{}); !errors.Is(err, ErrBadInput) {
		t.Errorf("a head of the wrong width: %v", err)
	}
	if _, _, err := e.TrainHead("minilm", data[:6], TrainConfig{}); !errors.Is(err, ErrBadInput) {
		t.Errorf("one label: %v", err)
	}
}
