package quant

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"mote/core"
	"mote/internal/testmodels"
	"mote/models"
)

// The encoder of these tests, all-MiniLM-L6-v2 Q4_K_M, from the Go module
// cache (see models/gguf_bert_test.go), read once per test binary.
var (
	encOnce sync.Once
	enc     *core.Bert
	encData []byte
	encErr  error
)

func miniLM(t testing.TB) (*core.Bert, []byte) {
	t.Helper()
	encOnce.Do(func() {
		if encData, encErr = testmodels.MiniLMBytes(); encErr != nil {
			return
		}
		enc, _, encErr = models.ReadEncoderBytes("minilm", encData)
	})
	if encErr != nil {
		t.Fatal(encErr)
	}
	return enc, encData
}

// evalTexts are the first lines of TinyStories' validation file.
func evalTexts(t testing.TB, n int) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "shared", "models", "tinystories-valid-first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "<|endoftext|>" && len(out) < n {
			out = append(out, l)
		}
	}
	return out
}

func TestPackEncoderIsExact(t *testing.T) {
	m, data := miniLM(t)
	pm, packs := PackEncoder(m)
	if len(packs) != 1+6*6 {
		t.Errorf("%d matrices packed, want all 37", len(packs))
	}
	bits := map[string]int{}
	for name, p := range packs {
		bits[name] = p.Bits
	}
	// Q8_0 8 bits, Q5_0 5, Q6_K 6, Q4_K 4 (explicit codebook 0..15)
	if bits["token_embd"] != 8 || bits["blk.0.attn_q"] != 5 || bits["blk.0.ffn_down"] != 6 || bits["blk.1.ffn_down"] != 4 || packs["blk.1.ffn_down"].Uniform {
		t.Errorf("bits %v", bits)
	}
	if packs["blk.0.attn_q"].Scale != models.ScaleF16 {
		t.Error("Q5_0's scales are halves but were not stored as f16")
	}
	var buf bytes.Buffer
	if err := models.WriteEncoder(&buf, pm, models.WriteOptions{Compression: models.CompressZstd, Packed: packs}); err != nil {
		t.Fatal(err)
	}
	t.Logf("GGUF %d bytes, repacked container %d bytes", len(data), buf.Len())
	if buf.Len() > len(data) {
		t.Errorf("the repacked container (%d bytes) is bigger than the GGUF (%d)", buf.Len(), len(data))
	}
	back, _, err := models.ReadEncoderBytes("packed.mote", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// same products to the bit: Q4 codebook kernels sum the same integers
	for _, text := range []string{"The cat sat on the mat.", "Quantized language models can run in a web browser."} {
		toks := m.Tokenizer.Encode(text, true)
		a, b := make([]float32, 384), make([]float32, 384)
		m.Embed(m.NewState(0), toks, a)
		back.Embed(back.NewState(0), toks, b)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("%q: value %d: GGUF %v, repacked %v", text, i, a[i], b[i])
			}
		}
	}
}

func TestDequantizeEncoder(t *testing.T) {
	m, _ := miniLM(t)
	f := DequantizeEncoder(m)
	if f.ActGroup != 0 || f.Weights.Layers[1].Down.Min != nil || f.Weights.Layers[1].Down.W.Type != core.F32 || f.Weights.TokenEmbedding.Type != core.F32 {
		t.Fatal("not an fp32 model")
	}
	if m.Weights.Layers[1].Down.Min == nil || m.Weights.Layers[0].Wq.W.Type != core.Q8 {
		t.Fatal("the original was changed")
	}
	// the same weights with float activations: only the order of sums differs
	mf := *m
	mf.ActGroup = 0
	r, err := CompareEncoders(f, &mf, evalTexts(t, 6), 64)
	if err != nil {
		t.Fatal(err)
	}
	if r.MinCosine < 0.999999 {
		t.Errorf("dequantized vs quantized weights, both float activations: %+v", r)
	}
}

func TestQuantizeEncoder(t *testing.T) {
	m, _ := miniLM(t)
	texts := evalTexts(t, 12)
	ref, _ := EmbedTexts(DequantizeEncoder(m), texts, 64)
	for _, c := range []struct {
		policy string
		min    float64 // measured here: see docs/EMBED.md for 256 texts
	}{
		// (layer matrices only, and one kind at 4 bits, to keep the test short;
		// docs/EMBED.md has whole-model figures over 256 texts)
		{"f32,attn_q=8b/uniform/g32/f16,attn_k=8b/uniform/g32/f16", 0.999},
		{"f32,ffn_up=4b/nl/g32/f16", 0.98},
	} {
		p, err := ParseEncoderPolicy(c.policy, 32)
		if err != nil {
			t.Fatal(err)
		}
		q, err := QuantizeEncoder(m, p)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(q.Mats); n != 12 && n != 6 {
			t.Errorf("%s: %d packed matrices", c.policy, n)
		}
		got, _ := EmbedTexts(q.Model, texts, 64)
		r := CompareEmbeddings(ref, got)
		t.Logf("%s: %+v", c.policy, r)
		if r.MinCosine < c.min {
			t.Errorf("%s: min cosine %.5f < %v", c.policy, r.MinCosine, c.min)
		}
		var buf bytes.Buffer
		if err := models.WriteEncoder(&buf, q.Model, models.WriteOptions{Packed: q.Mats}); err != nil {
			t.Fatal(err)
		}
		back, _, err := models.ReadEncoderBytes("q.mote", buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		again, _ := EmbedTexts(back, texts[:2], 64)
		for i := range again {
			if core.Cosine(again[i], got[i]) != 1 {
				t.Fatalf("%s: the written model embeds differently", c.policy)
			}
		}
	}
	if _, err := ParseEncoderPolicy("4b/nl/g32/f16,ffn_down", 32); err == nil {
		t.Error("a rule without a spec was accepted")
	}
	p, _ := ParseEncoderPolicy("f32,ffn_down=8b/uniform/g32/f16,attn_q.2=4b/nl/g32/f16", 0)
	if p.SpecFor("attn_q", 1) != nil || p.SpecFor("attn_q", 2).Bits != 4 || p.SpecFor("ffn_down", 5).Bits != 8 || p.Emb != nil {
		t.Errorf("policy rules: %+v", p)
	}
}

// TestQ4KMinimumsVsRequantization measures the choice models made for
// GGUF's Q4_K blocks (asymmetric: a scale and a minimum per 32 values):
// holding them exactly (core.Linear.Min) against re-quantizing their
// weights to mote's symmetric 8-bit groups, the alternative that needs no
// minimums. Float activations isolate the weights' error; with int8
// activations both carry the same activation rounding. docs/EMBED.md
// quotes the figures.
func TestQ4KMinimumsVsRequantization(t *testing.T) {
	m, _ := miniLM(t)
	texts := evalTexts(t, 12)
	ref, _ := EmbedTexts(DequantizeEncoder(m), texts, 64)
	rq := *m
	rq.Weights.Layers = append([]core.BertLayer(nil), m.Weights.Layers...)
	n := 0
	for l := range rq.Weights.Layers {
		down := &rq.Weights.Layers[l].Down
		if down.Min == nil {
			continue
		}
		p, err := QuantizeMat(DequantLinear(down), down.W.Rows, down.W.Cols, nil, Spec{Bits: 8, Group: 32, Scale: models.ScaleF32})
		if err != nil {
			t.Fatal(err)
		}
		*down = core.Linear{W: p.Core(), B: down.B}
		n++
	}
	if n != 4 {
		t.Fatalf("%d Q4_K matrices, want 4", n)
	}
	var fid [2][2]EncoderFidelity // [exact, requantized][float, int8 activations]
	for i, mm := range []*core.Bert{m, &rq} {
		for j, act := range []int{0, 32} {
			x := *mm
			x.ActGroup = act
			got, _ := EmbedTexts(&x, texts, 64)
			fid[i][j] = CompareEmbeddings(ref, got)
		}
	}
	t.Logf("Q4_K held exactly: mean cosine %.7f with float activations, %.7f with int8 ones", fid[0][0].MeanCosine, fid[0][1].MeanCosine)
	t.Logf("Q4_K re-quantized to 8-bit groups of 32: %.7f, %.7f", fid[1][0].MeanCosine, fid[1][1].MeanCosine)
	if fid[0][0].MinCosine < 0.999999 {
		t.Errorf("the exact form with float activations is not the fp32 model: %+v", fid[0][0])
	}
	if fid[1][0].MeanCosine > fid[0][0].MeanCosine || fid[1][1].MinCosine < 0.9995 {
		t.Errorf("re-quantization: %+v %+v", fid[1][0], fid[1][1])
	}
}
