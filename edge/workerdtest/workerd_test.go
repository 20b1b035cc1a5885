package workerdtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"mote/edge/bundle"
	"mote/edge/edgetest"
)

const prompt = "Once upon a time"

// refRequest is the request whose completion is the reference's: -n 256
// positions hold BOS's and the 4 prompt tokens' pieces, then 252 tokens.
func refRequest(opts string, stream bool) string {
	return fmt.Sprintf(`{"prompt": %q, "max_tokens": 252, %s, "stream": %v}`, prompt, opts, stream)
}

// checkReference runs the greedy and seeded reference requests, whole and
// streamed, on w.
func checkReference(t *testing.T, w *worker) {
	for _, tc := range []struct{ file, opts string }{
		{"greedy_once_upon_a_time.txt", `"temperature": 0`},
		{"seed42_once_upon_a_time.txt", `"temperature": 1, "top_p": 0.9, "seed": 42`},
	} {
		want := reference(t, tc.file)
		c, _ := w.complete(t, refRequest(tc.opts, false))
		if got := prompt + c.Choices[0].Text; got != want {
			t.Errorf("%s: prompt + text differs\n got: %q\nwant: %q", tc.file, got, want)
		}
		if c.Usage.CompletionTokens != 252 || *c.Choices[0].FinishReason != "length" {
			t.Errorf("%s: %d tokens, finish %s", tc.file, c.Usage.CompletionTokens, *c.Choices[0].FinishReason)
		}
		r := w.call(t, "POST", "/v1/completions", refRequest(tc.opts, true))
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("%s streamed: %d %q", tc.file, r.status, r.header.Get("Content-Type"))
		}
		text, finish, n := joined(t, events(t, string(r.body)))
		if text != c.Choices[0].Text || finish != "length" || n != 253 {
			t.Errorf("%s streamed: %d chunks (want 252 tokens + 1), finish %s, text differs: %v\n got: %q", tc.file, n, finish, text != c.Choices[0].Text, text)
		}
	}
}

// TestReferenceSIMD: dist/edge (the SIMD build, the model bundled) gives
// the reference texts in workerd.
func TestReferenceSIMD(t *testing.T) {
	w := startWorker(t, dist(t, "edge"))
	checkReference(t, w)
	if h := w.health(t); !h.SIMD || h.Loads != 1 {
		t.Errorf("dist/edge: %+v, want the SIMD build with one model load", h)
	}
}

// TestReferencePlain: the build without SIMD gives the same texts.
func TestReferencePlain(t *testing.T) {
	w := startWorker(t, dist(t, "edge-nosimd"))
	checkReference(t, w)
	if h := w.health(t); h.SIMD {
		t.Errorf("dist/edge-nosimd reports SIMD")
	}
}

// TestResident: one Go instance and one model load serve many requests;
// the first request (which starts Go and loads the model) is compared with
// the second.
func TestResident(t *testing.T) {
	w := startWorker(t, dist(t, "edge"))
	const body = `{"prompt": "Lily and Ben", "max_tokens": 20, "temperature": 0}`
	var first string
	var ttfb []time.Duration
	for i := 0; i < 12; i++ {
		c, r := w.complete(t, body)
		ttfb = append(ttfb, r.ttfb)
		if i == 0 {
			first = c.Choices[0].Text
		} else if c.Choices[0].Text != first {
			t.Errorf("request %d: %q, the first gave %q", i, c.Choices[0].Text, first)
		}
	}
	h := w.health(t)
	if h.Loads != 1 || h.Instances != 1 || h.Requests != 13 || h.Active != 0 {
		t.Errorf("after 12 completions: %+v, want 1 load, 1 Go instance, 13 requests", h)
	}
	t.Logf("time to first byte: first request %v (starts Go, loads the model), second %v, 12th %v; workerd listening after %v",
		ttfb[0], ttfb[1], ttfb[11], w.ready)
}

// TestBadInput: each bad request gets its status and OpenAI error object
// from the real worker, and a good request afterwards still works.
func TestBadInput(t *testing.T) {
	w := startWorker(t, dist(t, "edge"))
	for _, tc := range edgetest.BadRequests(64 << 10) {
		r := w.call(t, tc.Method, tc.Path, tc.Body, tc.Header...)
		if r.status != tc.Status {
			t.Errorf("%s: status %d, want %d: %s", tc.Name, r.status, tc.Status, r.body)
			continue
		}
		if err := edgetest.CheckErrorBody(r.body, tc.Param, tc.Code); err != nil {
			t.Errorf("%s: %v", tc.Name, err)
		}
		if c, _ := w.complete(t, `{"prompt": "Hi", "max_tokens": 3}`); c.Usage.CompletionTokens != 3 {
			t.Fatalf("after %s: %+v", tc.Name, c.Usage)
		}
	}
	h := w.health(t)
	if h.Instances != 1 || h.Active != 0 {
		t.Errorf("after the bad inputs: %+v", h)
	}
}

// TestConcurrentStreams: 32 streams to one isolate, all open at once
// (each has its first event before any reads on), complete with the text
// the same request gives alone, and no chunk of one shows up in another.
func TestConcurrentStreams(t *testing.T) {
	w := startWorker(t, dist(t, "edge"))
	const n = 32
	body := func(i int) string {
		return fmt.Sprintf(`{"prompt": %q, "max_tokens": 48, "temperature": 1, "seed": %d, "stream": true}`, prompt, 1000+i)
	}
	want := make([]string, n)
	for i := range want {
		c, _ := w.complete(t, strings.Replace(body(i), `"stream": true`, `"stream": false`, 1))
		want[i] = c.Choices[0].Text
	}
	got := make([]string, n)
	errs := make([]error, n)
	var open, wg sync.WaitGroup
	open.Add(n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			once := sync.OnceFunc(open.Done)
			defer once()
			resp, err := client.Post(w.url+"/v1/completions", "application/json", strings.NewReader(body(i)))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			head, err := br.ReadString('\n')
			once()
			open.Wait()
			rest, err2 := io.ReadAll(br)
			if err != nil || err2 != nil || resp.StatusCode != 200 {
				errs[i] = fmt.Errorf("status %d: %v %v", resp.StatusCode, err, err2)
				return
			}
			var sb strings.Builder
			id := ""
			for _, ev := range strings.Split(strings.TrimSuffix(head+string(rest), "\n\n"), "\n\n") {
				p := strings.TrimPrefix(ev, "data: ")
				if p == "[DONE]" {
					break
				}
				var c completion
				if err := json.Unmarshal([]byte(p), &c); err != nil || len(c.Choices) != 1 {
					errs[i] = fmt.Errorf("bad event %q", ev)
					return
				}
				if id == "" {
					id = c.ID
				} else if c.ID != id {
					errs[i] = fmt.Errorf("chunk of stream %s in stream %s", c.ID, id)
					return
				}
				sb.WriteString(c.Choices[0].Text)
			}
			got[i] = sb.String()
		}(i)
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != want[i] {
			t.Errorf("stream %d: %v\n got: %q\nwant: %q", i, errs[i], got[i], want[i])
		}
	}
	if h := w.health(t); h.Active != 0 || h.Instances != 1 {
		t.Errorf("after the streams: %+v", h)
	}
}

// TestAssetsModel: the model split into static-asset parts (here 300 KB
// each, to have several) streams into Go and gives the reference text.
func TestAssetsModel(t *testing.T) {
	dir := variant(t, func(o *bundle.Options) {
		o.Source = bundle.SourceAssets
		o.PartBytes = 300 << 10
	})
	w := startWorker(t, dir)
	c, _ := w.complete(t, refRequest(`"temperature": 0`, false))
	if got := prompt + c.Choices[0].Text; got != reference(t, "greedy_once_upon_a_time.txt") {
		t.Errorf("assets model: %q", got)
	}
	for i := 0; i < 3; i++ {
		w.complete(t, `{"prompt": "Hi", "max_tokens": 2}`)
	}
	if h := w.health(t); h.Loads != 1 || h.LoadFails != 0 || len(h.Models) != 1 || h.Models[0] != "stories260K" {
		t.Errorf("assets model: %+v", h)
	}

	// A missing part: the worker answers 503 and /healthz says why.
	bad := variant(t, func(o *bundle.Options) {
		o.Source = bundle.SourceAssets
		o.Vars = map[string]string{"MOTE_MODEL_PATH": "/models/nope.json"}
	})
	wb := startWorker(t, bad)
	if r := wb.call(t, "POST", "/v1/completions", `{"prompt": "Hi"}`); r.status != 503 {
		t.Errorf("without a model: %d %s", r.status, r.body)
	}
	r := wb.call(t, "GET", "/healthz", "")
	var h health
	json.Unmarshal(r.body, &h)
	if r.status != 503 || h.LoadFails < 1 || !strings.Contains(h.LastError, "404") {
		t.Errorf("/healthz without a model: %d %s", r.status, r.body)
	}
}

// TestAuthCORSBudget: a deployment with a bearer key from the environment
// (as a secret would be), one allowed origin and a small work budget.
func TestAuthCORSBudget(t *testing.T) {
	dir := variant(t, func(o *bundle.Options) {
		o.Vars = map[string]string{"MOTE_CORS_ORIGINS": "https://app.example", "MOTE_WORK_BUDGET": fmt.Sprint(10 * 260032)}
	})
	w := startWorker(t, dir, "MOTE_API_KEY=test-key-42")
	if r := w.call(t, "POST", "/v1/completions", `{"prompt": "Hi"}`); r.status != 401 || edgetest.CheckErrorBody(r.body, "", "invalid_api_key") != nil {
		t.Errorf("without the key: %d %s", r.status, r.body)
	}
	if r := w.call(t, "POST", "/v1/completions", `{"prompt": "Hi"}`, "Authorization", "Bearer wrong"); r.status != 401 {
		t.Errorf("with a wrong key: %d", r.status)
	}
	r := w.call(t, "OPTIONS", "/v1/completions", "", "Origin", "https://app.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
	if r := w.call(t, "OPTIONS", "/v1/completions", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST"); r.status != 403 {
		t.Errorf("preflight from another origin: %d", r.status)
	}
	c, r := w.complete(t, refRequest(`"temperature": 0`, false), "Authorization", "Bearer test-key-42", "Origin", "https://app.example")
	if r.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("no CORS header on the answer: %v", r.header)
	}
	// 10 positions of work: 4 for the prompt's pieces, 6 tokens
	if c.Usage.CompletionTokens != 6 || *c.Choices[0].FinishReason != "length" ||
		!strings.HasPrefix(reference(t, "greedy_once_upon_a_time.txt"), prompt+c.Choices[0].Text) {
		t.Errorf("work budget: %+v %q", c.Usage, c.Choices[0].Text)
	}
}

// TestCrashRecovery: when the Go program dies (a test-only path panics in a
// goroutine), the request gets a 500 error object, and the next request
// starts a new Go instance that loads the model again.
func TestCrashRecovery(t *testing.T) {
	dir := variant(t, func(o *bundle.Options) { o.Vars = map[string]string{"MOTE_TEST_CRASH_PATH": "/crash"} })
	w := startWorker(t, dir)
	w.complete(t, `{"prompt": "Hi", "max_tokens": 2}`)
	r := w.call(t, "GET", "/crash", "")
	if r.status != 500 || edgetest.CheckErrorBody(r.body, "", "go_exited") != nil {
		t.Errorf("crash: %d %s", r.status, r.body)
	}
	c, _ := w.complete(t, refRequest(`"temperature": 0`, false))
	if prompt+c.Choices[0].Text != reference(t, "greedy_once_upon_a_time.txt") {
		t.Errorf("after the crash: %q", c.Choices[0].Text)
	}
	if h := w.health(t); h.Instances != 2 || h.Loads != 1 {
		t.Errorf("after the crash: %+v, want a second Go instance with its own load", h)
	}
}

// TestClientGone: a client that drops a stream mid-way frees its session.
func TestClientGone(t *testing.T) {
	w := startWorker(t, dist(t, "edge"))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: time.Minute}
	resp, err := c.Post(w.url+"/v1/completions", "application/json", strings.NewReader(`{"prompt": "Hi", "max_tokens": 256, "stream": true}`))
	if err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close() // mid-stream: closes the connection
	var h health
	for i := 0; i < 100; i++ { // up to 5 s
		if h = w.health(t); h.Active == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h.Active != 0 {
		t.Errorf("a dropped stream still holds its session: %+v", h)
	}
	w.complete(t, `{"prompt": "Hi", "max_tokens": 3}`)
}
