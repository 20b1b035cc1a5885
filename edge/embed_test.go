package edge

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"mote/edge/edgetest"
	"mote/engine"
	"mote/internal/testmodels"
)

// miniLM is the encoder of docs/EMBED.md: all-MiniLM-L6-v2 Q4_K_M from a Go
// module (internal/testmodels fetches it into the module cache and checks it).
func miniLM(t testing.TB) []byte {
	t.Helper()
	b, err := testmodels.MiniLMBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// embedServer serves stories260K and the encoder as "minilm".
func embedServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := newServer(t, cfg)
	if _, err := s.LoadEncoder("minilm", miniLM(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

type embeddingAnswer struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage *struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// postEmbed posts body and checks OpenAI's shape; it returns the answer and
// the vectors (decoded from floats or base64).
func postEmbed(t testing.TB, s *Server, body string) (embeddingAnswer, [][]float32) {
	t.Helper()
	rec := do(t, s, "POST", "/v1/embeddings", body)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("POST /v1/embeddings %s: %d %s", clip(body, 200), rec.Code, clip(rec.Body.String(), 500))
	}
	var a embeddingAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.Object != "list" || a.Usage == nil || len(a.Data) == 0 {
		t.Fatalf("not OpenAI's shape (%v): %s", err, clip(rec.Body.String(), 500))
	}
	vecs := make([][]float32, len(a.Data))
	for i, d := range a.Data {
		if d.Object != "embedding" || d.Index != i {
			t.Fatalf("data[%d]: object %q index %d", i, d.Object, d.Index)
		}
		var s string
		if json.Unmarshal(d.Embedding, &vecs[i]) == nil {
			continue
		}
		if err := json.Unmarshal(d.Embedding, &s); err != nil {
			t.Fatalf("data[%d].embedding is neither floats nor a string: %.80s", i, d.Embedding)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b)%4 != 0 {
			t.Fatalf("data[%d].embedding: bad base64 (%v, %d bytes)", i, err, len(b))
		}
		for j := 0; j < len(b); j += 4 {
			vecs[i] = append(vecs[i], math.Float32frombits(binary.LittleEndian.Uint32(b[j:])))
		}
	}
	return a, vecs
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestEmbeddings: a string and an array give OpenAI's answer with the
// engine's vectors to the bit (through JSON's shortest float32 decimals and
// through base64), unit length, and usage counting [CLS] and [SEP].
func TestEmbeddings(t *testing.T) {
	s := embedServer(t, Config{})
	texts := []string{"The cat sat on the mat.", "Quantized language models can run in a web browser.", "Lily found a big red ball in the garden."}
	ref := engine.NewEmbedder(engine.EmbedLimits{}, nil)
	if _, err := ref.Load("minilm", miniLM(t)); err != nil {
		t.Fatal(err)
	}
	want, err := ref.Embed("minilm", texts, engine.EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want.Tokens[0] != 9 || want.Tokens[1] != 13 { // docs/EMBED.md's reference counts
		t.Fatalf("tokens %v", want.Tokens)
	}

	a, v := postEmbed(t, s, fmt.Sprintf(`{"input": %q, "model": "minilm", "encoding_format": "float"}`, texts[0]))
	if a.Model != "minilm" || len(v) != 1 || a.Usage.PromptTokens != 9 || a.Usage.TotalTokens != 9 || !sameBits(v[0], want.Vectors[0]) {
		t.Errorf("one string: model %q usage %+v, %d vectors, same bits %v", a.Model, *a.Usage, len(v), len(v) == 1 && sameBits(v[0], want.Vectors[0]))
	}
	body, _ := json.Marshal(map[string]any{"input": texts})
	a, v = postEmbed(t, s, string(body)) // no model: the default encoder
	if a.Model != "minilm" || len(v) != 3 || a.Usage.PromptTokens != want.TotalTokens || a.Usage.TotalTokens != want.TotalTokens {
		t.Fatalf("array: model %q usage %+v (want %d), %d vectors", a.Model, *a.Usage, want.TotalTokens, len(v))
	}
	for i := range texts {
		var n float64
		for _, x := range v[i] {
			n += float64(x) * float64(x)
		}
		if len(v[i]) != 384 || !sameBits(v[i], want.Vectors[i]) || math.Abs(n-1) > 1e-5 {
			t.Errorf("array: vector %d: %d values, norm² %v, same bits as the engine %v", i, len(v[i]), n, sameBits(v[i], want.Vectors[i]))
		}
	}
	body, _ = json.Marshal(map[string]any{"input": texts, "encoding_format": "base64", "dimensions": 384, "user": "u1"})
	_, b := postEmbed(t, s, string(body))
	for i := range texts {
		if !sameBits(b[i], want.Vectors[i]) {
			t.Errorf("base64: vector %d differs from the engine's", i)
		}
	}
	h := health(t, s)
	if h["embeddings"] != 3.0 || h["embed_tokens"] != float64(9+2*want.TotalTokens) || h["encoder_loads"] != 1.0 {
		t.Errorf("/healthz: %v", h)
	}
}

func health(t testing.TB, s *Server) map[string]any {
	t.Helper()
	rec := do(t, s, "GET", "/healthz", "")
	var h map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
		t.Fatalf("/healthz: %v %s", err, rec.Body)
	}
	return h
}

// TestEmbeddingsBadInput: every shared bad case gets its status and error
// object, and the server answers a good request after each.
func TestEmbeddingsBadInput(t *testing.T) {
	s := embedServer(t, Config{})
	for _, tc := range edgetest.BadEmbedRequests("stories260K") {
		rec := do(t, s, tc.Method, tc.Path, tc.Body, tc.Header...)
		if rec.Code != tc.Status {
			t.Errorf("%s: status %d, want %d: %s", tc.Name, rec.Code, tc.Status, clip(rec.Body.String(), 300))
			continue
		}
		if err := edgetest.CheckErrorBody(rec.Body.Bytes(), tc.Param, tc.Code); err != nil {
			t.Errorf("%s: %v", tc.Name, err)
		}
	}
	if a, _ := postEmbed(t, s, `{"input": "Hi"}`); a.Usage.TotalTokens != 3 {
		t.Errorf("after the bad requests: %+v", *a.Usage)
	}
	if h := health(t, s); h["embeddings"] != 1.0 {
		t.Errorf("bad requests counted as embeddings: %v", h["embeddings"])
	}
}

// TestEmbeddingsLimits: the configured limits, and a worker without an
// encoder.
func TestEmbeddingsLimits(t *testing.T) {
	s := embedServer(t, Config{MaxEmbedInputs: 2, MaxEmbedTokens: 20, MaxPromptBytes: 40})
	for _, tc := range []struct{ body, code string }{
		{`{"input": ["a", "b", "c"]}`, "too_many_inputs"},
		{fmt.Sprintf(`{"input": %q}`, strings.Repeat("b", 41)), "input_too_long"},
		{`{"input": ["one two three four five six seven eight", "a b c d e f g h i j"]}`, "too_many_tokens"},
	} {
		rec := do(t, s, "POST", "/v1/embeddings", tc.body)
		if rec.Code != 400 || edgetest.CheckErrorBody(rec.Body.Bytes(), "input", tc.code) != nil {
			t.Errorf("%s: %d %s, want 400 %s", tc.body, rec.Code, clip(rec.Body.String(), 300), tc.code)
		}
	}
	if a, _ := postEmbed(t, s, `{"input": ["one two three four five six seven eight", "ten"]}`); a.Usage.TotalTokens != 13 {
		t.Errorf("within the limits: %+v", *a.Usage)
	}
	rec := do(t, newServer(t, Config{}), "POST", "/v1/embeddings", `{"input": "Hi"}`)
	if rec.Code != 503 || edgetest.CheckErrorBody(rec.Body.Bytes(), "", "no_model") != nil {
		t.Errorf("no encoder: %d %s", rec.Code, rec.Body)
	}
	if _, err := s.LoadEncoder("stories260K", miniLM(t)); err == nil {
		t.Errorf("an encoder under a language model's name was loaded")
	}
	if _, err := s.LoadEncoder("bad", []byte("GGUF and then nothing")); err == nil {
		t.Errorf("a truncated encoder was loaded")
	} else if h := health(t, s); h["last_load_error"] == nil || h["encoder_loads"] != 1.0 {
		t.Errorf("/healthz after a failed encoder load: %v", h)
	}
}

// TestEmbeddingsModels: GET /v1/models lists the encoder beside the
// language model, with what each serves.
func TestEmbeddingsModels(t *testing.T) {
	s := embedServer(t, Config{})
	rec := do(t, s, "GET", "/v1/models", "")
	var list struct {
		Data []modelObject `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list.Data) != 2 {
		t.Fatalf("GET /v1/models: %v %s", err, rec.Body)
	}
	lm, enc := list.Data[0], list.Data[1]
	if lm.ID != "stories260K" || lm.Endpoint != "completions" || enc.ID != "minilm" || enc.Endpoint != "embeddings" ||
		enc.Dimensions != 384 || enc.ContextLength != 512 || enc.Format != "gguf" {
		t.Errorf("GET /v1/models: %+v", list.Data)
	}
	rec = do(t, s, "GET", "/v1/models/minilm", "")
	var one modelObject
	if err := json.Unmarshal(rec.Body.Bytes(), &one); err != nil || rec.Code != 200 || one != enc {
		t.Errorf("GET /v1/models/minilm: %d %s", rec.Code, rec.Body)
	}
	// completions refuse the encoder
	rec = do(t, s, "POST", "/v1/completions", `{"prompt": "Hi", "model": "minilm"}`)
	if rec.Code != 400 || edgetest.CheckErrorBody(rec.Body.Bytes(), "model", "model_not_found") != nil {
		t.Errorf("completion on the encoder: %d %s", rec.Code, rec.Body)
	}
}

func TestEmbedConfigFromEnv(t *testing.T) {
	env := map[string]string{EnvMaxEmbedInputs: "8", EnvMaxEmbedTokens: "512"}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || c.MaxEmbedInputs != 8 || c.MaxEmbedTokens != 512 {
		t.Errorf("%+v %v", c, err)
	}
	if d := New(Config{}).Config(); d.MaxEmbedInputs != DefaultMaxEmbedInputs || d.MaxEmbedTokens != DefaultMaxEmbedTokens {
		t.Errorf("defaults not filled: %+v", d)
	}
	for _, bad := range []string{"0", "2049", "x"} {
		if _, err := ConfigFromEnv(func(k string) string {
			if k == EnvMaxEmbedInputs {
				return bad
			}
			return ""
		}); err == nil {
			t.Errorf("%s=%q accepted", EnvMaxEmbedInputs, bad)
		}
	}
}
