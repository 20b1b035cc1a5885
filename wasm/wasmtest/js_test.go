package wasmtest

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mote/cli"
)

// jsError is what the driver reports for a thrown value.
type jsError struct {
	IsError bool
	Message string
	Code    *string
}

type jsRun struct {
	Text    string
	Tokens  int
	Reason  string
	Session struct {
		ID           int    `json:"id"`
		Model        string `json:"model"`
		Seed         int64  `json:"seed"`
		Steps        int    `json:"steps"`
		PromptTokens int    `json:"prompt_tokens"`
		Pos          int    `json:"pos"`
	}
	StopAfter bool
}

type jsInfo struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	Size   int64  `json:"size"`
	DType  string `json:"dtype"`
	Config struct {
		Dim       int `json:"dim"`
		VocabSize int `json:"vocab_size"`
		SeqLen    int `json:"seq_len"`
	} `json:"config"`
}

type jsOut struct {
	BeforeInit         *jsError
	InitWithoutKernels *jsError
	Version            string
	Info               jsInfo
	ViewInfo           jsInfo
	BufferInfo         jsInfo
	Models             []string
	Texts              []jsRun
	Interleaved        []string
	StopRunning        bool
	NextAfterStop      *jsError
	StopUnknown        bool
	Errors             map[string]*jsError
	Mote               *struct {
		Info jsInfo
		Text string
	}
	Bench *struct {
		Tokens int
		MS     float64 `json:"ms"`
	}
}

// runNode runs testdata/driver.js on dist/mote-js.wasm with job on stdin.
func runNode(t testing.TB, job any) jsOut {
	t.Helper()
	return runNodeWasm(t, "mote-js.wasm", "", job)
}

// runNodeWasm runs the driver on a js build, with the SIMD kernel module
// when kernels is not empty.
func runNodeWasm(t testing.TB, wasm, kernels string, job any) jsOut {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: the js tests need Node 20 (.ci/run installs it): %v", err)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	wasmExec := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js")
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	in, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, abs(filepath.Join("testdata", "driver.js")), wasmExec,
		abs(filepath.Join(repoRoot, "wasm", "js", "mote.js")), abs(dist(t, wasm)),
		abs(filepath.Join(modelsDir, "stories260K.bin")), abs(filepath.Join(modelsDir, "tok512.bin")))
	if kernels != "" {
		cmd.Args = append(cmd.Args, abs(kernels))
	}
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node driver.js: %v\nstderr: %s", err, stderr.String())
	}
	var out jsOut
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("driver output: %v\nstdout: %.2000s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("driver wrote to stderr: %s", stderr.String())
	}
	return out
}

type jsCase struct {
	Prompt string         `json:"prompt"`
	Opts   map[string]any `json:"opts"`
}

// TestJSAPI runs the reference cases through mote.js in Node: the text must
// be the reference's and the native command's, sequentially and
// interleaved; errors must be thrown Errors with the Go message and a code.
func TestJSAPI(t *testing.T) {
	var cases []jsCase
	for _, c := range refCases {
		cases = append(cases, jsCase{c.prompt, c.opts})
	}
	moteFile := filepath.Join(t.TempDir(), "stories260K.mote")
	if code := cli.Main([]string{"convert", filepath.Join(modelsDir, "stories260K.gguf"), moteFile}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("native convert: exit %d", code)
	}
	out := runNode(t, map[string]any{"cases": cases, "mote": moteFile, "moteCase": cases[0]})

	if !strings.HasPrefix(out.Version, "mote ") || !strings.Contains(out.Version, "js/wasm") {
		t.Errorf("version %q", out.Version)
	}
	if e := out.BeforeInit; e == nil || !e.IsError || !strings.Contains(e.Message, "mote.init") {
		t.Errorf("next before init: %+v", e)
	}
	model, err := os.Stat(filepath.Join(modelsDir, "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []jsInfo{out.Info, out.ViewInfo, out.BufferInfo} {
		if in.Format != "llama2c" || in.Size != model.Size() || in.DType != "f32" || in.Config.Dim != 64 || in.Config.VocabSize != 512 || in.Config.SeqLen != 512 {
			t.Errorf("load info %+v", in)
		}
	}
	if strings.Join(out.Models, ",") != "buffer,s,view" {
		t.Errorf("models() = %v", out.Models)
	}

	if len(out.Texts) != len(refCases) || len(out.Interleaved) != len(refCases) {
		t.Fatalf("%d texts, %d interleaved for %d cases", len(out.Texts), len(out.Interleaved), len(refCases))
	}
	for i, c := range refCases {
		want := reference(t, c.file)
		native, _, code := runNative(c.args...)
		if code != 0 {
			t.Fatalf("native run of %s failed", c.file)
		}
		r := out.Texts[i]
		if r.Text+"\n" != want || r.Text+"\n" != native {
			t.Errorf("%s through the JS API differs\n    js: %q\n   ref: %q\nnative: %q", c.file, r.Text+"\n", want, native)
		}
		if out.Interleaved[i] != r.Text {
			t.Errorf("%s differs when interleaved in JS:\n%q\n%q", c.file, out.Interleaved[i], r.Text)
		}
		if r.Reason != "length" && r.Reason != "end" || r.StopAfter {
			t.Errorf("%s: reason %q, stop() after the end = %v", c.file, r.Reason, r.StopAfter)
		}
		if s := r.Session; s.Model != "s" || s.Steps != int(c.opts["steps"].(int)) || s.PromptTokens < 1 || s.Pos != 0 {
			t.Errorf("%s: session() = %+v", c.file, s)
		}
	}
	if seed := out.Texts[2].Session.Seed; seed != 42 {
		t.Errorf("seeded session reports seed %d", seed)
	}

	if m := out.Mote; m == nil || m.Info.Format != "mote" || m.Text+"\n" != reference(t, refCases[0].file) {
		t.Errorf("the .mote container through the JS API: %+v", m)
	}

	if !out.StopRunning || out.StopUnknown {
		t.Errorf("stop(running) = %v, stop(unknown) = %v", out.StopRunning, out.StopUnknown)
	}
	if e := out.NextAfterStop; e == nil || e.Code == nil || *e.Code != "no_session" {
		t.Errorf("next after stop: %+v", e)
	}
	for name, want := range map[string]struct{ code, msg string }{
		"badModel":    {"bad_model", "junk: offset"},
		"noTokenizer": {"no_tokenizer", "carries no tokenizer"},
		"exists":      {"exists", `"s"`},
		"notBytes":    {"bad_input", "must be a Uint8Array"},
		"noModel":     {"no_model", `"nope" is not loaded`},
		"badOption":   {"bad_input", `unknown option "temp"`},
		"badTopp":     {"bad_input", "topp 2 outside 0..1"},
		"badSeed":     {"bad_input", "seed must be an integer"},
		"noSession":   {"no_session", "999999"},
		"badID":       {"bad_input", "session id"},
	} {
		e := out.Errors[name]
		if e == nil || !e.IsError || e.Code == nil || *e.Code != want.code || !strings.Contains(e.Message, want.msg) {
			t.Errorf("%s: thrown %+v, want an Error with code %s mentioning %q", name, e, want.code, want.msg)
		}
	}
}

// TestJSAPISIMD runs the js build with the SIMD kernels (-tags mote_simd,
// wasm/simd/kernels.wasm wired by mote.init): the same reference bytes, in
// V8's WebAssembly SIMD.
func TestJSAPISIMD(t *testing.T) {
	var cases []jsCase
	for _, c := range refCases {
		cases = append(cases, jsCase{c.prompt, c.opts})
	}
	out := runNodeWasm(t, "mote-js-simd.wasm", filepath.Join(repoRoot, "wasm", "simd", "kernels.wasm"), map[string]any{"cases": cases})
	if e := out.InitWithoutKernels; e == nil || !e.IsError || !strings.Contains(e.Message, "kernels") {
		t.Errorf("init of the SIMD build without kernels: %+v, want an Error about the kernels", e)
	}
	if len(out.Texts) != len(refCases) {
		t.Fatalf("%d texts for %d cases", len(out.Texts), len(refCases))
	}
	for i, c := range refCases {
		if got, want := out.Texts[i].Text+"\n", reference(t, c.file); got != want {
			t.Errorf("%s with SIMD kernels differs\n got: %q\nwant: %q", c.file, got, want)
		}
		if out.Interleaved[i] != out.Texts[i].Text {
			t.Errorf("%s with SIMD kernels differs when interleaved", c.file)
		}
	}
}

// BenchmarkDecodeJSNode reports tok/s of a greedy whole-context session
// through the JS API in Node (V8), timed inside the driver (load excluded).
func BenchmarkDecodeJSNode(b *testing.B) { benchNode(b, "mote-js.wasm", "") }

// BenchmarkDecodeJSNodeSIMD is BenchmarkDecodeJSNode with the SIMD kernels.
func BenchmarkDecodeJSNodeSIMD(b *testing.B) {
	benchNode(b, "mote-js-simd.wasm", filepath.Join(repoRoot, "wasm", "simd", "kernels.wasm"))
}

func benchNode(b *testing.B, wasm, kernels string) {
	var tokens int
	var ms float64
	for b.Loop() {
		out := runNodeWasm(b, wasm, kernels, map[string]any{"bench": map[string]any{
			"prompt": "Once upon a time", "opts": map[string]any{"temperature": 0, "steps": 512}}})
		if out.Bench == nil || out.Bench.Tokens == 0 {
			b.Fatalf("no bench result: %+v", out.Bench)
		}
		tokens += out.Bench.Tokens
		ms += out.Bench.MS
	}
	b.ReportMetric(float64(tokens)/(ms/1000), "tok/s")
}
