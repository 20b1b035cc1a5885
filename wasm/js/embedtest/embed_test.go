// Package embedtest tests the js build's embedding API (wasm/js/embed.go
// and mote.js) under Node against the native engine.
package embedtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"mote/engine"
	"mote/internal/testmodels"
)

// TestEmbedNode runs the js build's embed API under Node, plain and with
// the SIMD kernels (-tags mote_simd, as the web page runs it), and checks
// that both give the native engine's vectors bit for bit.
func TestEmbedNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed for the js build's tests: ", err)
	}
	model := miniLMPath(t)
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"The cat sat on the mat.", "", "Quantized language models can run in a web browser.", engine.BenchParagraph}
	native := engine.NewEmbedder(engine.EmbedLimits{}, nil)
	if _, err := native.Load("minilm", data); err != nil {
		t.Fatal(err)
	}
	want, err := native.Embed("minilm", texts, engine.EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join("..", "..", "..")
	driver := filepath.Join(dir, "driver.js")
	if err := os.WriteFile(driver, []byte(embedDriver), 0o644); err != nil {
		t.Fatal(err)
	}
	job, _ := json.Marshal(map[string]any{"texts": texts})
	for _, simd := range []bool{false, true} {
		wasm := filepath.Join(dir, fmt.Sprintf("mote-js-%v.wasm", simd))
		args := []string{"build", "-o", wasm}
		if simd {
			args = append(args, "-tags", "mote_simd")
		}
		cmd := exec.Command("go", append(args, "./wasm/js")...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the js wasm (simd %v): %v\n%s", simd, err, out)
		}
		kernels := ""
		if simd {
			kernels = filepath.Join(root, "wasm", "simd", "kernels.wasm")
		}
		moteJS, _ := filepath.Abs(filepath.Join("..", "mote.js"))
		run := exec.Command(node, driver, filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"), moteJS, wasm, model, kernels)
		run.Stdin = bytes.NewReader(job)
		var stderr bytes.Buffer
		run.Stderr = &stderr
		out, err := run.Output()
		if err != nil {
			t.Fatalf("node (simd %v): %v\n%s", simd, err, stderr.String())
		}
		var got struct {
			Info struct {
				Kind, Format string
				Dim          int
				MaxTokens    int `json:"max_tokens"`
			}
			Embed struct {
				Dim        int
				Embeddings [][]float64
				Tokens     []int
				Truncated  []bool
				Total      int `json:"total_tokens"`
			}
			Single []float64
			Errors map[string]struct{ Code, Message string }
			Bench  struct {
				Tokens, Runs int
				PerSecond    float64 `json:"per_second"`
			}
			Encoders    int
			AfterUnload int `json:"afterUnload"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("driver output: %v\n%s", err, out)
		}
		if got.Info.Kind != "encoder" || got.Info.Format != "gguf" || got.Info.Dim != 384 || got.Info.MaxTokens != 512 {
			t.Errorf("simd %v: info %+v", simd, got.Info)
		}
		e := got.Embed
		if e.Dim != 384 || len(e.Embeddings) != len(texts) || e.Total != want.TotalTokens {
			t.Fatalf("simd %v: dim %d, %d vectors, %d tokens", simd, e.Dim, len(e.Embeddings), e.Total)
		}
		for i := range texts {
			if e.Tokens[i] != want.Tokens[i] || e.Truncated[i] {
				t.Errorf("simd %v text %d: %d tokens, native %d", simd, i, e.Tokens[i], want.Tokens[i])
			}
			for j, v := range e.Embeddings[i] {
				if float32(v) != want.Vectors[i][j] || float64(float32(v)) != v {
					t.Fatalf("simd %v text %d value %d: js %v, native %v (want the same bits)", simd, i, j, v, want.Vectors[i][j])
				}
			}
		}
		for j, v := range got.Single {
			if float32(v) != want.Vectors[0][j] {
				t.Fatalf("simd %v: embed(name, string) differs from the array form at %d", simd, j)
			}
		}
		for name, code := range map[string]string{"noModel": "no_model", "badOption": "bad_input", "badTexts": "bad_input",
			"llama": "bad_model", "tooLong": "limit", "exists": "exists"} {
			if got.Errors[name].Code != code {
				t.Errorf("simd %v: %s: error %+v, want code %s", simd, name, got.Errors[name], code)
			}
		}
		if got.Bench.Tokens != 12 || got.Bench.Runs != 2 || got.Bench.PerSecond <= 0 || got.Encoders != 1 || got.AfterUnload != 0 {
			t.Errorf("simd %v: bench %+v, encoders %d then %d", simd, got.Bench, got.Encoders, got.AfterUnload)
		}
		if math.IsNaN(got.Bench.PerSecond) {
			t.Error("NaN speed")
		}
	}
}

// embedDriver is the Node side: it loads the encoder through mote.js and
// prints one JSON object.
const embedDriver = `"use strict";
const fs = require("fs");
const [wasmExec, moteJs, wasmPath, modelPath, kernelsPath] = process.argv.slice(2);
globalThis.fs = fs;
globalThis.path = require("path");
require(wasmExec);
require(moteJs);
function caught(f) {
	try { f(); return null; } catch (e) { return { code: e.code ?? null, message: String(e.message) }; }
}
async function main() {
	const job = JSON.parse(fs.readFileSync(0, "utf8"));
	const opts = kernelsPath ? { kernels: fs.readFileSync(kernelsPath) } : undefined;
	await mote.init(fs.readFileSync(wasmPath), opts);
	const model = fs.readFileSync(modelPath);
	const out = {};
	out.info = mote.loadEncoder("minilm", model);
	const r = mote.embed("minilm", job.texts);
	if (!(r.embeddings[0] instanceof Float32Array)) throw new Error("embeddings are not Float32Arrays");
	out.embed = { ...r, embeddings: r.embeddings.map((a) => Array.from(a)) };
	out.single = Array.from(mote.embed("minilm", job.texts[0], { truncate: false }).embeddings[0]);
	out.errors = {
		noModel: caught(() => mote.embed("nope", "x")),
		badOption: caught(() => mote.embed("minilm", "x", { truncat: true })),
		badTexts: caught(() => mote.embed("minilm", [1, 2])),
		llama: caught(() => mote.loadEncoder("llama", new Uint8Array([71, 71, 85, 70, 3, 0, 0, 0]))),
		tooLong: caught(() => mote.embed("minilm", "word ".repeat(600))),
		exists: caught(() => mote.loadEncoder("minilm", model)),
	};
	out.bench = mote.embedBench("minilm", "Lily found a big red ball in the garden.", 2);
	out.encoders = mote.encoders().length;
	mote.unloadEncoder("minilm");
	out.afterUnload = mote.encoders().length;
	process.stdout.write(JSON.stringify(out));
	process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
`

// miniLMPath returns all-MiniLM-L6-v2-Q4_K_M.gguf in the Go module cache
// (internal/testmodels fetches and checks it).
func miniLMPath(t testing.TB) string {
	t.Helper()
	p, err := testmodels.MiniLM()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
