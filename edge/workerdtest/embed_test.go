package workerdtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mote/edge/bundle"
	"mote/edge/edgetest"
)

// The encoder dist/edge serves (build.sh: edge_encoder).
const encoderName = "all-minilm-l6-v2"

// encoderFile reassembles the encoder the worker serves from dist/edge's
// static assets (its manifest and parts) into a temporary file: what the
// worker reads, byte for byte.
func encoderFile(t testing.TB) string {
	t.Helper()
	dir := dist(t, "edge", "assets", "models")
	var m struct {
		Name  string   `json:"name"`
		Bytes int      `json:"bytes"`
		Parts []string `json:"parts"`
	}
	b, err := os.ReadFile(filepath.Join(dir, encoderName+".mote.json"))
	if err != nil {
		t.Fatalf("dist/edge has no encoder (build.sh's edge_encoder): %v", err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Name != encoderName || len(m.Parts) == 0 {
		t.Fatalf("encoder manifest %s: %v", b, err)
	}
	var all []byte
	for _, p := range m.Parts {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) != m.Bytes {
		t.Fatalf("encoder parts: %d bytes, the manifest says %d", len(all), m.Bytes)
	}
	f := filepath.Join(t.TempDir(), encoderName+".mote")
	if err := os.WriteFile(f, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// cliEmbed runs `bin/mote embed MODEL -i TEXT --json`: the vector and the
// token count ([CLS] and [SEP] included).
func cliEmbed(t testing.TB, model, text string) ([]float32, int) {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join(repoRoot, "bin", "mote"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("bin/mote is missing: run ./build.sh test (it builds bin/mote first): %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "embed", model, "-i", text, "--json")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mote embed %q: %v\n%s", text, err, stderr.String())
	}
	var r struct {
		Embedding []float32 `json:"embedding"`
		Tokens    int       `json:"tokens"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Embedding) == 0 {
		t.Fatalf("mote embed --json printed %.200q: %v", out, err)
	}
	return r.Embedding, r.Tokens
}

type embeddings struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
	Usage *struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// embed posts an embeddings request and checks OpenAI's shape.
func (w *worker) embed(t testing.TB, body string) (embeddings, response) {
	t.Helper()
	r := w.call(t, "POST", "/v1/embeddings", body)
	if r.status != 200 {
		t.Fatalf("POST /v1/embeddings %.200s: %d %.500s", body, r.status, r.body)
	}
	var e embeddings
	if err := json.Unmarshal(r.body, &e); err != nil || e.Object != "list" || e.Usage == nil || len(e.Data) == 0 {
		t.Fatalf("POST /v1/embeddings %.200s: not OpenAI's shape (%v): %.500s", body, err, r.body)
	}
	for i, d := range e.Data {
		if d.Object != "embedding" || d.Index != i {
			t.Fatalf("data[%d]: object %q, index %d", i, d.Object, d.Index)
		}
	}
	return e, r
}

// firstDiff is the first index where a and b differ in their bits, or -1.
func firstDiff(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// embedTexts: a string alone, then an array (with accents, CJK and a
// special token written as text, which both sides read as that token).
var embedTexts = []string{
	"The cat sat on the mat.",
	"Quantized language models can run in a web browser.",
	"Café au lait, naïve résumé: 東京 [SEP] and emoji 🙂.",
	"Lily found a big red ball in the garden.",
}

// checkEmbeddings posts embedTexts to w, the first alone and all as an
// array, and compares every vector with the CLI's on the same encoder file:
// bit for bit (the kernels' plain-Go twins and the SIMD ones give the same
// bits, docs/EMBED.md), with usage counting the CLI's tokens.
// It returns the first request's time (the encoder loads in it).
func checkEmbeddings(t *testing.T, w *worker) time.Duration {
	model := encoderFile(t)
	want := make([][]float32, len(embedTexts))
	tokens := make([]int, len(embedTexts))
	total := 0
	for i, text := range embedTexts {
		want[i], tokens[i] = cliEmbed(t, model, text)
		total += tokens[i]
	}
	e, r := w.embed(t, fmt.Sprintf(`{"input": %q, "model": %q, "encoding_format": "float"}`, embedTexts[0], encoderName))
	if e.Model != encoderName || len(e.Data) != 1 || e.Usage.PromptTokens != tokens[0] || e.Usage.TotalTokens != tokens[0] {
		t.Errorf("one string: model %q, %d vectors, usage %+v, want %d tokens", e.Model, len(e.Data), *e.Usage, tokens[0])
	} else if i := firstDiff(e.Data[0].Embedding, want[0]); i >= 0 {
		t.Errorf("one string: the worker's vector differs from mote embed's at [%d]", i)
	}
	body, _ := json.Marshal(map[string]any{"input": embedTexts})
	e, _ = w.embed(t, string(body))
	if len(e.Data) != len(embedTexts) || e.Usage.PromptTokens != total || e.Usage.TotalTokens != total {
		t.Fatalf("array: %d vectors, usage %+v, want %d tokens", len(e.Data), *e.Usage, total)
	}
	for i := range embedTexts {
		if j := firstDiff(e.Data[i].Embedding, want[i]); j >= 0 {
			t.Errorf("array: vector %d (%q) differs from mote embed's at [%d]", i, embedTexts[i], j)
		}
	}
	return r.total
}

// TestEmbeddingsSIMD: dist/edge's POST /v1/embeddings returns the CLI's
// vectors; the encoder loads once (on the first embeddings request) and
// stays; the memory the isolate's wasm instance holds is logged.
func TestEmbeddingsSIMD(t *testing.T) {
	w := startWorker(t, dist(t, "edge"))
	w.complete(t, `{"prompt": "Hi", "max_tokens": 2}`)
	h := w.health(t)
	if h.EncoderLoads != 0 {
		t.Errorf("the encoder loaded before any embeddings request: %+v", h)
	}
	before := h.WasmMemory
	first := checkEmbeddings(t, w)
	// the longest text the context takes: the encoder's largest scratch state
	long := strings.TrimSpace(strings.Repeat("word ", 510))
	e, _ := w.embed(t, fmt.Sprintf(`{"input": %q}`, long))
	if e.Usage.TotalTokens != 512 {
		t.Errorf("510 words: %d tokens, want 512", e.Usage.TotalTokens)
	}
	h = w.health(t)
	if h.EncoderLoads != 1 || h.Loads != 1 || h.Instances != 1 || h.Embeddings != 3 || len(h.Encoders) != 1 || h.Encoders[0] != encoderName {
		t.Errorf("after the embeddings: %+v, want one encoder load in one Go instance", h)
	}
	if h.WasmMemory <= 0 || h.WasmMemory > 128<<20 {
		t.Errorf("wasm memory %d bytes: want it reported and under the isolate's 128 MB", h.WasmMemory)
	}
	w.complete(t, `{"prompt": "Hi", "max_tokens": 2}`)
	t.Logf("first embeddings request (loads the encoder from static assets): %v", first)
	t.Logf("wasm memory: %.1f MiB with the language model, %.1f MiB with the encoder too (after a 512-token text); Go heap %.1f MiB, Go sys %.1f MiB",
		mib(before), mib(h.WasmMemory), mib(h.GoHeapBytes), mib(h.GoSysBytes))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// TestEmbeddingsPlain: the build without SIMD returns the same bits.
func TestEmbeddingsPlain(t *testing.T) {
	w := startWorker(t, dist(t, "edge-nosimd"))
	checkEmbeddings(t, w)
	if h := w.health(t); h.SIMD || h.EncoderLoads != 1 {
		t.Errorf("dist/edge-nosimd: %+v", h)
	}
}

// TestEmbeddingsBadInput: each bad embeddings request gets its status and
// error object from the real worker, and a good one afterwards still works.
func TestEmbeddingsBadInput(t *testing.T) {
	w := startWorker(t, dist(t, "edge"))
	for _, tc := range edgetest.BadEmbedRequests("stories260K") {
		r := w.call(t, tc.Method, tc.Path, tc.Body, tc.Header...)
		if r.status != tc.Status {
			t.Errorf("%s: status %d, want %d: %.300s", tc.Name, r.status, tc.Status, r.body)
			continue
		}
		if err := edgetest.CheckErrorBody(r.body, tc.Param, tc.Code); err != nil {
			t.Errorf("%s: %v", tc.Name, err)
		}
		if e, _ := w.embed(t, `{"input": "Hi"}`); e.Usage.TotalTokens != 3 {
			t.Fatalf("after %s: %+v", tc.Name, *e.Usage)
		}
	}
	if h := w.health(t); h.Instances != 1 || h.EncoderLoads != 1 {
		t.Errorf("after the bad inputs: %+v", h)
	}
}

// TestEmbeddingsNoEncoder: a Worker built without an encoder, and one whose
// encoder cannot be fetched, answer 503 with the error object (the second
// says why in /healthz), and their completions work.
func TestEmbeddingsNoEncoder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*bundle.Options)
		why    string
	}{
		{"no encoder", func(*bundle.Options) {}, ""},
		{"a missing encoder", func(o *bundle.Options) {
			o.Encoder = dist(t, "edge", "assets", "models", encoderName+".mote.part000")
			o.EncoderName = encoderName
			o.Vars = map[string]string{"MOTE_ENCODER_PATH": "/models/nope.json"}
		}, "404"},
	} {
		w := startWorker(t, variant(t, tc.change))
		r := w.call(t, "POST", "/v1/embeddings", `{"input": "Hi"}`)
		if r.status != 503 || edgetest.CheckErrorBody(r.body, "", "no_model") != nil {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
		w.complete(t, `{"prompt": "Hi", "max_tokens": 2}`)
		if h := w.health(t); !strings.Contains(h.LastError, tc.why) || (tc.why != "" && h.LoadFails != 1) || h.EncoderLoads != 0 {
			t.Errorf("%s: /healthz %+v", tc.name, h)
		}
	}
}
