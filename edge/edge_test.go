package edge

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"mote/core"
	"mote/edge/edgetest"
	"mote/models"
)

var shared = filepath.Join("..", "..", "shared")

func readShared(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{shared}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reference is a reference output without its final newline.
func reference(t testing.TB, name string) string {
	t.Helper()
	return strings.TrimSuffix(string(readShared(t, "reference", name)), "\n")
}

// newServer serves stories260K.bin (with tok512.bin) as "stories260K".
func newServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := New(cfg)
	if _, err := s.Load("stories260K", readShared(t, "models", "stories260K.bin"), readShared(t, "models", "tok512.bin")); err != nil {
		t.Fatal(err)
	}
	return s
}

type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Text         string  `json:"text"`
		Index        int     `json:"index"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func do(t testing.TB, h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func complete(t testing.TB, h http.Handler, body string) completion {
	t.Helper()
	rec := do(t, h, "POST", "/v1/completions", body)
	if rec.Code != 200 {
		t.Fatalf("POST %s: status %d: %s", body, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var c completion
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		t.Fatalf("response %s: %v", rec.Body, err)
	}
	if c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") || c.Created == 0 || len(c.Choices) != 1 || c.Usage == nil || c.Choices[0].FinishReason == nil {
		t.Fatalf("not OpenAI's shape: %s", rec.Body)
	}
	return c
}

// parseSSE splits a text/event-stream body into its data payloads and
// checks the framing: every event is "data: ...\n\n" and the last is [DONE].
func parseSSE(t testing.TB, body string) []completion {
	t.Helper()
	if !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("stream does not end with data: [DONE]: %q", clip(body, 300)+"..."+body[max(0, len(body)-100):])
	}
	var out []completion
	events := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
	for i, ev := range events[:len(events)-1] {
		payload, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(payload, "\n") {
			t.Fatalf("event %d is not one data line: %q", i, ev)
		}
		var c completion
		if err := json.Unmarshal([]byte(payload), &c); err != nil {
			t.Fatalf("event %d: %v: %q", i, err, payload)
		}
		out = append(out, c)
	}
	return out
}

// streamText concatenates chunk texts and returns the finish reason; all
// chunks but the last have a null finish_reason and share one id.
func streamText(t testing.TB, chunks []completion) (string, string, int) {
	t.Helper()
	var sb strings.Builder
	finish := ""
	n := 0
	for i, c := range chunks {
		if c.Object != "text_completion" || c.ID != chunks[0].ID || c.Model == "" {
			t.Fatalf("chunk %d: bad shape %+v", i, c)
		}
		if len(c.Choices) == 0 { // the usage chunk
			continue
		}
		n++
		sb.WriteString(c.Choices[0].Text)
		if c.Choices[0].FinishReason != nil {
			if finish != "" {
				t.Fatalf("chunk %d: a second finish_reason", i)
			}
			finish = *c.Choices[0].FinishReason
		}
	}
	if finish == "" {
		t.Fatal("no chunk carries a finish_reason")
	}
	return sb.String(), finish, n
}

// TestReferenceText: greedy and seeded completions are the reference's
// continuation, streamed and not, and the streamed chunks (one per token
// plus the finishing one) concatenate to the whole text.
func TestReferenceText(t *testing.T) {
	s := newServer(t, Config{})
	const prompt = "Once upon a time"
	for _, tc := range []struct{ file, opts string }{
		{"greedy_once_upon_a_time.txt", `"temperature": 0`},
		{"seed42_once_upon_a_time.txt", `"temperature": 1, "top_p": 0.9, "seed": 42`},
	} {
		ref := reference(t, tc.file)
		// -n 256 counts positions: BOS's and the 4 prompt tokens' pieces leave 252 tokens.
		body := fmt.Sprintf(`{"model": "stories260K", "prompt": %q, "max_tokens": 252, %s}`, prompt, tc.opts)
		c := complete(t, s, body)
		if got := prompt + c.Choices[0].Text; got != ref {
			t.Errorf("%s: prompt + text differs from the reference\n got: %q\nwant: %q", tc.file, got, ref)
		}
		if *c.Choices[0].FinishReason != "length" || c.Usage.CompletionTokens != 252 || c.Usage.PromptTokens != 5 || c.Usage.TotalTokens != 257 {
			t.Errorf("%s: finish %s usage %+v, want length 252+5", tc.file, *c.Choices[0].FinishReason, *c.Usage)
		}

		rec := do(t, s, "POST", "/v1/completions", strings.Replace(body, "{", `{"stream": true, "stream_options": {"include_usage": true},`, 1))
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream: %d %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		chunks := parseSSE(t, rec.Body.String())
		text, finish, n := streamText(t, chunks)
		if text != c.Choices[0].Text || finish != "length" {
			t.Errorf("%s: streamed text differs (finish %s)\n got: %q\nwant: %q", tc.file, finish, text, c.Choices[0].Text)
		}
		if n != 253 {
			t.Errorf("%s: %d text chunks, want 252 tokens + 1 finishing chunk", tc.file, n)
		}
		last := chunks[len(chunks)-1]
		if last.Usage == nil || len(last.Choices) != 0 || last.Usage.CompletionTokens != 252 {
			t.Errorf("%s: no usage chunk at the end: %+v", tc.file, last)
		}
	}
}

// moteRun prints what `mote run MODEL -z TOK -t temp -p topp -s seed -n
// steps -i prompt` prints: cli/run.go's loop over core, repeated here so
// that this package's tests do not depend on the whole command line.
func moteRun(t testing.TB, prompt, temp, topp, seed string, steps int) string {
	t.Helper()
	m, _, err := models.Open(filepath.Join(shared, "models", "stories260K.bin"), filepath.Join(shared, "models", "tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	steps = m.Config.Steps(steps)
	g := m.NewGenerator(m.NewState(steps), core.NewSampler(m.Config.VocabSize, float32(f(temp)), float32(f(topp)), uint64(f(seed))),
		m.Tokenizer.Encode(prompt, true, false), steps)
	var sb strings.Builder
	for {
		_, text, ok := g.Next()
		if !ok {
			break
		}
		sb.WriteString(text)
	}
	return sb.String() + "\n"
}

// TestMatchesMoteRun: prompt + text is what `mote run` prints for -n
// (prompt tokens + max_tokens), minus its final newline.
func TestMatchesMoteRun(t *testing.T) {
	s := newServer(t, Config{})
	for _, tc := range []struct {
		prompt string
		n      int
		temp   string
		seed   string
		topp   string
	}{
		{"Lily and Ben", 40, "0", "1", "0.9"},
		{"The dog", 30, "0.8", "7", "0.95"},
		{"A big red ball", 25, "1", "123", "1"},
	} {
		c := complete(t, s, fmt.Sprintf(`{"prompt": %q, "max_tokens": %d, "temperature": %s, "seed": %s, "top_p": %s}`, tc.prompt, tc.n, tc.temp, tc.seed, tc.topp))
		steps := c.Usage.PromptTokens - 1 + tc.n
		want := moteRun(t, tc.prompt, tc.temp, tc.topp, tc.seed, steps)
		if got := tc.prompt + c.Choices[0].Text; got != strings.TrimSuffix(want, "\n") {
			t.Errorf("%q: differs from mote run -n %d\n got: %q\nwant: %q", tc.prompt, steps, got, want)
		}
	}
}

// TestStop: generation ends at the first stop string, which the text
// excludes; streamed and whole agree even when the stop string spans tokens.
func TestStop(t *testing.T) {
	s := newServer(t, Config{})
	full := complete(t, s, `{"prompt": "Once upon a time", "max_tokens": 100, "temperature": 0}`).Choices[0].Text
	for _, stop := range []string{`"."`, `["park", "ball"]`, `"Lily. She"`, `"zzz"`} {
		var list []string
		if err := json.Unmarshal([]byte(stop), &list); err != nil {
			var one string
			json.Unmarshal([]byte(stop), &one)
			list = []string{one}
		}
		want, wantFinish := full, "length"
		if i := firstStop(full, list); i >= 0 {
			want, wantFinish = full[:i], "stop"
		}
		body := fmt.Sprintf(`{"prompt": "Once upon a time", "max_tokens": 100, "temperature": 0, "stop": %s}`, stop)
		c := complete(t, s, body)
		if c.Choices[0].Text != want || *c.Choices[0].FinishReason != wantFinish {
			t.Errorf("stop %s: got %q (%s), want %q (%s)", stop, c.Choices[0].Text, *c.Choices[0].FinishReason, want, wantFinish)
		}
		rec := do(t, s, "POST", "/v1/completions", strings.Replace(body, "{", `{"stream": true,`, 1))
		text, finish, _ := streamText(t, parseSSE(t, rec.Body.String()))
		if text != want || finish != wantFinish {
			t.Errorf("stop %s streamed: got %q (%s), want %q (%s)", stop, text, finish, want, wantFinish)
		}
	}
	if s.eng.Sessions() != 0 {
		t.Errorf("%d sessions left running", s.eng.Sessions())
	}
}

func TestHeldBack(t *testing.T) {
	for _, tc := range []struct {
		s     string
		stops []string
		want  int
	}{
		{"abc", []string{"cd"}, 1}, {"abc", []string{"bcd", "x"}, 2}, {"abc", []string{"abc"}, 0},
		{"abc", []string{"zz"}, 0}, {"", []string{"a"}, 0}, {"aaa", []string{"aaaa"}, 3},
	} {
		if got := heldBack(tc.s, tc.stops); got != tc.want {
			t.Errorf("heldBack(%q, %q) = %d, want %d", tc.s, tc.stops, got, tc.want)
		}
	}
}

// TestBadInput: every malformed request gets its status and an OpenAI
// error object, never a 500, and the server keeps answering.
func TestBadInput(t *testing.T) {
	s := newServer(t, Config{MaxBodyBytes: 1000, MaxPromptBytes: 300})
	for _, tc := range edgetest.BadRequests(1000) {
		rec := do(t, s, tc.Method, tc.Path, tc.Body, tc.Header...)
		if rec.Code != tc.Status {
			t.Errorf("%s: status %d, want %d: %s", tc.Name, rec.Code, tc.Status, rec.Body)
			continue
		}
		if err := edgetest.CheckErrorBody(rec.Body.Bytes(), tc.Param, tc.Code); err != nil {
			t.Errorf("%s: %v", tc.Name, err)
		}
		c := complete(t, s, `{"prompt": "Hi", "max_tokens": 3}`)
		if c.Usage.CompletionTokens != 3 {
			t.Fatalf("after %s: %+v", tc.Name, c.Usage)
		}
	}
	if s.eng.Sessions() != 0 {
		t.Errorf("%d sessions left running", s.eng.Sessions())
	}
}

func TestContextAndBudget(t *testing.T) {
	s := newServer(t, Config{MaxPromptBytes: 8000})
	long := strings.Repeat("Lily and Ben went to the park. ", 100) // about 700 tokens: more than the 512 context
	rec := do(t, s, "POST", "/v1/completions", fmt.Sprintf(`{"prompt": %q}`, long))
	if rec.Code != 400 || edgetest.CheckErrorBody(rec.Body.Bytes(), "prompt", "context_length_exceeded") != nil {
		t.Errorf("prompt beyond the context: %d %s", rec.Code, rec.Body)
	}
	// Near the end of the context, generation stops there with "length":
	// 512 positions, the last sampled token never fed back, so BOS + prompt
	// + completion = 513.
	near := strings.Repeat("Lily and Ben went to the park. ", 40) // about 480 tokens
	c := complete(t, s, fmt.Sprintf(`{"prompt": %q, "max_tokens": 256, "temperature": 0}`, near))
	if *c.Choices[0].FinishReason != "length" || c.Usage.TotalTokens != 513 || c.Usage.CompletionTokens >= 256 {
		t.Errorf("at the context's end: finish %s usage %+v", *c.Choices[0].FinishReason, *c.Usage)
	}

	// A budget of 10 positions: 4 run the prompt's tokens after BOS, 6 make tokens.
	small := newServer(t, Config{WorkBudget: 10 * 260032})
	c = complete(t, small, `{"prompt": "Once upon a time", "max_tokens": 50, "temperature": 0}`)
	if c.Usage.CompletionTokens != 6 || *c.Choices[0].FinishReason != "length" {
		t.Errorf("budget of 10 positions: %+v finish %s", *c.Usage, *c.Choices[0].FinishReason)
	}
	want := reference(t, "greedy_once_upon_a_time.txt")
	if !strings.HasPrefix(want, "Once upon a time"+c.Choices[0].Text) {
		t.Errorf("budget-cut text %q is not the reference's start", c.Choices[0].Text)
	}
	tiny := newServer(t, Config{WorkBudget: 3 * 260032})
	rec = do(t, tiny, "POST", "/v1/completions", `{"prompt": "Once upon a time"}`)
	if rec.Code != 400 || edgetest.CheckErrorBody(rec.Body.Bytes(), "prompt", "work_budget_exceeded") != nil {
		t.Errorf("prompt beyond the budget: %d %s", rec.Code, rec.Body)
	}
}

// TestNaturalEnd: with room to spare the model ends its story with BOS:
// finish_reason "stop" and fewer tokens than max_tokens.
func TestNaturalEnd(t *testing.T) {
	s := newServer(t, Config{MaxTokens: 600})
	for seed := 1; seed <= 20; seed++ {
		c := complete(t, s, fmt.Sprintf(`{"prompt": "", "max_tokens": 600, "seed": %d}`, seed))
		if *c.Choices[0].FinishReason == "stop" {
			if c.Usage.CompletionTokens >= 511 {
				t.Fatalf("stop after %d tokens", c.Usage.CompletionTokens)
			}
			return
		}
	}
	t.Fatal("no seed of 20 ended its story before the context's end")
}

func TestRoutesAndCORS(t *testing.T) {
	s := newServer(t, Config{AllowedOrigins: []string{"https://app.example"}})
	rec := do(t, s, "GET", "/v1/models", "")
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Context int    `json:"context_length"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 || list.Object != "list" ||
		len(list.Data) != 1 || list.Data[0].ID != "stories260K" || list.Data[0].Object != "model" || list.Data[0].Context != 512 {
		t.Errorf("GET /v1/models: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, s, "GET", "/v1/models/stories260K", ""); rec.Code != 200 {
		t.Errorf("GET /v1/models/stories260K: %d", rec.Code)
	}
	if rec := do(t, s, "GET", "/v1/models/nope", ""); rec.Code != 404 || edgetest.CheckErrorBody(rec.Body.Bytes(), "model", "model_not_found") != nil {
		t.Errorf("GET /v1/models/nope: %d %s", rec.Code, rec.Body)
	}

	// preflight from an allowed origin, then the actual request
	rec = do(t, s, "OPTIONS", "/v1/completions", "", "Origin", "https://app.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	if rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(rec.Header().Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "authorization") {
		t.Errorf("preflight: %d %v", rec.Code, rec.Header())
	}
	rec = do(t, s, "POST", "/v1/completions", `{"prompt": "Hi", "max_tokens": 2}`, "Origin", "https://app.example")
	if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("CORS on POST: %d %v", rec.Code, rec.Header())
	}
	rec = do(t, s, "OPTIONS", "/v1/completions", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if rec.Code != 403 || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", rec.Code, rec.Header())
	}
	rec = do(t, s, "GET", "/healthz", "", "Origin", "https://evil.example")
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS header for a foreign origin: %v", rec.Header())
	}
}

func TestAuth(t *testing.T) {
	s := newServer(t, Config{APIKey: "sekret-123"})
	for _, auth := range []string{"", "Bearer nope", "sekret-123", "Basic sekret-123"} {
		rec := do(t, s, "POST", "/v1/completions", `{"prompt": "Hi"}`, "Authorization", auth)
		if rec.Code != 401 || edgetest.CheckErrorBody(rec.Body.Bytes(), "", "invalid_api_key") != nil {
			t.Errorf("Authorization %q: %d %s", auth, rec.Code, rec.Body)
		}
	}
	if rec := do(t, s, "GET", "/v1/models", "", "Authorization", "Bearer sekret-123"); rec.Code != 200 {
		t.Errorf("with the key: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, s, "GET", "/healthz", ""); rec.Code != 200 {
		t.Errorf("/healthz needs no key: %d", rec.Code)
	}
	if rec := do(t, s, "OPTIONS", "/v1/completions", "", "Origin", "https://x.example", "Access-Control-Request-Method", "POST"); rec.Code != 204 {
		t.Errorf("preflight needs no key: %d", rec.Code)
	}
}

// TestHealthCounts: one load, every request counted.
func TestHealthCounts(t *testing.T) {
	s := newServer(t, Config{})
	for i := 0; i < 10; i++ {
		complete(t, s, `{"prompt": "Hi", "max_tokens": 2}`)
	}
	do(t, s, "GET", "/nope", "")
	var h struct {
		Status   string `json:"status"`
		Loads    int    `json:"model_loads"`
		Requests int    `json:"requests"`
		Tokens   int    `json:"tokens"`
		Active   int    `json:"active_sessions"`
	}
	rec := do(t, s, "GET", "/healthz", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil || rec.Code != 200 {
		t.Fatalf("/healthz: %d %s", rec.Code, rec.Body)
	}
	if h.Status != "ok" || h.Loads != 1 || h.Requests != 12 || h.Tokens != 20 || h.Active != 0 {
		t.Errorf("/healthz: %+v", h)
	}
	if rec := do(t, New(Config{}), "GET", "/healthz", ""); rec.Code != 503 {
		t.Errorf("/healthz without a model: %d", rec.Code)
	}
	if rec := do(t, Broken(errors.New("MOTE_MAX_TOKENS bad")), "GET", "/healthz", ""); rec.Code != 500 {
		t.Errorf("/healthz misconfigured: %d", rec.Code)
	}
}

// TestConcurrentStreams: 32 overlapping streams over real HTTP, each with
// its own seed, all complete with their own text (compared with the same
// request run alone).
func TestConcurrentStreams(t *testing.T) {
	s := newServer(t, Config{})
	srv := httptest.NewServer(s)
	defer srv.Close() // (also closed below, before the sessions are counted)
	const n = 32
	body := func(i int) string {
		return fmt.Sprintf(`{"prompt": "Once upon a time", "max_tokens": 60, "temperature": 1, "seed": %d, "stream": true}`, i+1)
	}
	want := make([]string, n)
	for i := range want {
		rec := do(t, s, "POST", "/v1/completions", body(i))
		want[i], _, _ = streamText(t, parseSSE(t, rec.Body.String()))
	}
	got := make([]string, n)
	errs := make([]error, n)
	var started, wg sync.WaitGroup
	started.Add(n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Post(srv.URL+"/v1/completions", "application/json", strings.NewReader(body(i)))
			if err != nil {
				errs[i] = err
				started.Done()
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			first, err := br.ReadString('\n') // the first event is out: this stream is open
			started.Done()
			started.Wait() // all streams open at once before any reads on
			rest, err2 := io.ReadAll(br)
			if err != nil || err2 != nil {
				errs[i] = errors.Join(err, err2)
				return
			}
			var sb strings.Builder
			for _, c := range parseSSE(t, first+string(rest)) {
				if len(c.Choices) > 0 {
					sb.WriteString(c.Choices[0].Text)
				}
			}
			got[i] = sb.String()
		}(i)
	}
	wg.Wait()
	// Close waits for the handlers to return: a client can read a stream's
	// last byte before its handler has ended the session.
	srv.Close()
	for i := range got {
		if errs[i] != nil || got[i] != want[i] {
			t.Errorf("stream %d: %v\n got: %q\nwant: %q", i, errs[i], got[i], want[i])
		}
	}
	if s.eng.Sessions() != 0 {
		t.Errorf("%d sessions left running", s.eng.Sessions())
	}
}

// failWriter fails every Write after the first n.
type failWriter struct {
	*httptest.ResponseRecorder
	n int
}

func (w *failWriter) Write(b []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("client gone")
	}
	w.n--
	return w.ResponseRecorder.Write(b)
}

// TestClientGone: a stream whose client went away frees its session.
func TestClientGone(t *testing.T) {
	s := newServer(t, Config{})
	w := &failWriter{httptest.NewRecorder(), 3}
	s.ServeHTTP(w, httptest.NewRequest("POST", "/v1/completions", strings.NewReader(`{"prompt": "Hi", "max_tokens": 100, "stream": true}`)))
	if s.eng.Sessions() != 0 {
		t.Errorf("%d sessions left running", s.eng.Sessions())
	}
	complete(t, s, `{"prompt": "Hi", "max_tokens": 3}`)
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{EnvMaxTokens: "100", EnvWorkBudget: "12345", EnvCORSOrigins: " https://a.example, https://b.example ,", EnvAPIKey: "k", EnvModelName: "m"}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxTokens != 100 || c.WorkBudget != 12345 || c.APIKey != "k" || c.DefaultModel != "m" ||
		len(c.AllowedOrigins) != 2 || c.AllowedOrigins[1] != "https://b.example" || c.MaxBodyBytes != 0 {
		t.Errorf("%+v", c)
	}
	if d := New(c).Config(); d.MaxBodyBytes != DefaultMaxBodyBytes || d.MaxSessions != DefaultMaxSessions {
		t.Errorf("defaults not filled: %+v", d)
	}
	for _, bad := range []string{"0", "-1", "x", "1.5", "99999999999999999999"} {
		if _, err := ConfigFromEnv(func(k string) string {
			if k == EnvMaxTokens {
				return bad
			}
			return ""
		}); err == nil {
			t.Errorf("%s=%q accepted", EnvMaxTokens, bad)
		}
	}
}
