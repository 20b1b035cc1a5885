package workerdtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mote/edge/bundle"
)

var (
	repoRoot = filepath.Join("..", "..")
	shared   = filepath.Join(repoRoot, "..", "shared")
)

// dist is the build's output folder: $MOTE_DIST (set by build.sh) or dist/.
func dist(t testing.TB, parts ...string) string {
	t.Helper()
	d := os.Getenv("MOTE_DIST")
	if d == "" {
		d = filepath.Join(repoRoot, "dist")
	}
	p := filepath.Join(append([]string{d}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run ./build.sh test (it builds dist/edge first): %v", p, err)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// workerdBin is the workerd from npm (package.json; build.sh installs it).
func workerdBin(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(repoRoot, "node_modules", "@cloudflare", "workerd-linux-64", "bin", "workerd"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("workerd not installed (npm ci, or ./build.sh test installs it): %v", err)
	}
	return p
}

// reference is a reference output without its final newline.
func reference(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(shared, "reference", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// worker is one workerd process serving one Worker folder on loopback.
type worker struct {
	url     string
	cmd     *exec.Cmd
	log     *syncBuffer
	started time.Time
	ready   time.Duration // from exec to the port accepting connections
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startWorker runs `workerd serve workerd.capnp` in dir on a free loopback
// port and waits (bounded) until it accepts connections. env adds
// environment variables (MOTE_API_KEY). The process ends with the test.
func startWorker(t testing.TB, dir string, env ...string) *worker {
	t.Helper()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(workerdBin(t), "serve", "workerd.capnp", "--socket-addr", "http="+addr)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	w := &worker{url: "http://" + addr, cmd: cmd, log: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = w.log, w.log
	w.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("workerd log:\n%s", w.log.String())
		}
	})
	for i := 0; i < 300; i++ { // up to 15 s
		c, err := net.DialTimeout("tcp", addr, 50*time.Millisecond)
		if err == nil {
			c.Close()
			w.ready = time.Since(w.started)
			return w
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("workerd did not open %s:\n%s", addr, w.log.String())
	return nil
}

var client = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}

type response struct {
	status int
	header http.Header
	body   []byte
	ttfb   time.Duration // until the response's first body byte
	total  time.Duration
}

// call sends one request and reads the whole answer.
func (w *worker) call(t testing.TB, method, path, body string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, w.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	br.Peek(1)
	ttfb := time.Since(t0)
	b, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, ttfb: ttfb, total: time.Since(t0)}
}

type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Created int64  `json:"created"`
	Choices []struct {
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// complete posts a non-streamed completion and checks OpenAI's shape.
func (w *worker) complete(t testing.TB, body string, hdr ...string) (completion, response) {
	t.Helper()
	r := w.call(t, "POST", "/v1/completions", body, hdr...)
	if r.status != 200 {
		t.Fatalf("POST %s: %d %s", body, r.status, r.body)
	}
	var c completion
	if err := json.Unmarshal(r.body, &c); err != nil || c.Object != "text_completion" || len(c.Choices) != 1 || c.Usage == nil || c.Choices[0].FinishReason == nil {
		t.Fatalf("POST %s: not OpenAI's shape (%v): %s", body, err, r.body)
	}
	return c, r
}

// events splits an SSE body into its data payloads, checking the framing
// and the final [DONE].
func events(t testing.TB, body string) []completion {
	t.Helper()
	if !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("stream does not end with data: [DONE]: ...%q", body[max(0, len(body)-200):])
	}
	parts := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
	var out []completion
	for i, ev := range parts[:len(parts)-1] {
		p, ok := strings.CutPrefix(ev, "data: ")
		var c completion
		if !ok || json.Unmarshal([]byte(p), &c) != nil || c.Object != "text_completion" {
			t.Fatalf("event %d malformed: %q", i, ev)
		}
		out = append(out, c)
	}
	return out
}

// joined concatenates the chunks' texts, checking that they share one id
// and that only the last text chunk has a finish_reason; it returns the
// text, the finish reason and the number of text chunks.
func joined(t testing.TB, chunks []completion) (string, string, int) {
	t.Helper()
	var sb strings.Builder
	finish, n := "", 0
	for i, c := range chunks {
		if c.ID != chunks[0].ID {
			t.Fatalf("chunk %d has id %s, the stream's is %s: streams mixed", i, c.ID, chunks[0].ID)
		}
		if len(c.Choices) == 0 {
			continue
		}
		if finish != "" {
			t.Fatalf("chunk %d after the finishing chunk", i)
		}
		n++
		sb.WriteString(c.Choices[0].Text)
		if c.Choices[0].FinishReason != nil {
			finish = *c.Choices[0].FinishReason
		}
	}
	if finish == "" {
		t.Fatal("no finishing chunk")
	}
	return sb.String(), finish, n
}

type health struct {
	Status      string `json:"status"`
	SIMD        bool   `json:"simd"`
	Loads       int    `json:"model_loads"`
	LoadFails   int    `json:"model_load_fail"`
	LastError   string `json:"last_load_error"`
	Requests    int    `json:"requests"`
	Active      int    `json:"active_sessions"`
	Instances   int    `json:"go_instances"`
	Models      []string
	GoSysBytes  int64 `json:"go_sys_bytes"`
	GoHeapBytes int64 `json:"go_heap_bytes"`

	EncoderLoads int      `json:"encoder_loads"`
	Embeddings   int      `json:"embeddings"`
	Encoders     []string `json:"encoders"`
	WasmMemory   int64    `json:"wasm_memory_bytes"`
}

func (w *worker) health(t testing.TB) health {
	t.Helper()
	r := w.call(t, "GET", "/healthz", "")
	var h health
	if err := json.Unmarshal(r.body, &h); err != nil {
		t.Fatalf("/healthz: %d %v: %s", r.status, err, r.body)
	}
	if r.status != 200 {
		t.Fatalf("/healthz: %d %s", r.status, r.body)
	}
	return h
}

// variant writes a Worker folder like dist/edge's into a temporary folder,
// with the given changes, from dist/edge's own app and kernels.
func variant(t testing.TB, change func(*bundle.Options)) string {
	t.Helper()
	o := bundle.Options{
		Out:       t.TempDir(),
		Glue:      filepath.Join(repoRoot, "edge", "glue", "worker.mjs"),
		WasmExec:  dist(t, "edge", "wasm_exec.js"),
		App:       dist(t, "edge", "app.wasm"),
		Kernels:   dist(t, "edge", "kernels.wasm"),
		Model:     filepath.Join(shared, "models", "stories260K.bin"),
		Tokenizer: filepath.Join(shared, "models", "tok512.bin"),
		ModelName: "stories260K",
	}
	change(&o)
	if _, err := bundle.Write(o); err != nil {
		t.Fatal(err)
	}
	return o.Out
}
