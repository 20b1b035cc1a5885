//go:build !wasm

package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"mote/core"
	"mote/models"
)

// pruneTexts writes the first n TinyStories documents to dir/name.
func pruneTexts(t *testing.T, dir, name string, n int) string {
	t.Helper()
	b, err := os.ReadFile(sharedPath("models", "tinystories-valid-first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.SplitAfter(string(b), "<|endoftext|>")
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(docs[:n], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustPrune(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := runCLI(t, append([]string{"prune"}, args...)...)
	if code != 0 {
		t.Fatalf("prune %v: exit %d: %s", args, code, errs)
	}
	return out
}

// openPruned loads a pruned container (tokenizer inside) and checks it.
func openPruned(t *testing.T, path string) *core.Model {
	t.Helper()
	m, info, err := models.Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != models.FormatMote || m.Tokenizer == nil {
		t.Fatalf("%s: format %s, tokenizer %v", path, info.Format, m.Tokenizer != nil)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPruneCLIStructured(t *testing.T) {
	dir := t.TempDir()
	calib := pruneTexts(t, dir, "calib.txt", 20)
	vocab := pruneTexts(t, dir, "vocab.txt", 30)
	in, tok := sharedPath("models", "stories260K.bin"), sharedPath("models", "tok512.bin")
	out := filepath.Join(dir, "ffn.mote")
	report := mustPrune(t, in, "-z", tok, "-o", out, "--ffn", "0.25", "--layers=1", "--vocab", vocab, "--calib", calib)
	refit, plain := filepath.Join(dir, "refit.mote"), filepath.Join(dir, "plain.mote")
	mustPrune(t, in, "-z", tok, "-o", refit, "--ffn", "0.25", "--calib", calib)
	mustPrune(t, in, "-z", tok, "-o", plain, "--ffn", "0.25", "--calib", calib, "--no-refit")
	if a, b := openPruned(t, plain), openPruned(t, refit); a.Config.HiddenDim != 129 || slices.Equal(a.Weights.W2[0].F, b.Weights.W2[0].F) {
		t.Fatal("--no-refit made no difference to w2")
	}
	for _, want := range []string{"ffn hidden 172 -> 129", "layers 5 -> 4", "vocab 512 -> ", "calibration: "} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("output mode: %v %v", st.Mode(), err)
	}
	m := openPruned(t, out)
	if c := m.Config; c.HiddenDim != 129 || c.NLayers != 4 || c.VocabSize >= 512 || m.Weights.W1[0].Type != core.F32 {
		t.Fatalf("config %+v", c)
	}
	// the pruned file runs like any model
	text, errs, code := runCLI(t, "run", out, "-t", "0", "-n", "48", "-i", "Once upon a time")
	if code != 0 || !strings.HasPrefix(text, "Once upon a time") || len(text) < 40 {
		t.Fatalf("run: exit %d, %q, %s", code, text, errs)
	}
	// and the vocabulary text encodes as before, through the file's tokenizer
	orig, _, err := models.Open(in, tok)
	if err != nil {
		t.Fatal(err)
	}
	vt, _ := os.ReadFile(vocab)
	a, b := orig.Tokenizer.Encode(string(vt), true, false), m.Tokenizer.Encode(string(vt), true, false)
	if len(a) != len(b) {
		t.Fatalf("%d tokens before, %d after", len(a), len(b))
	}
	for i := range a {
		if orig.Tokenizer.Vocab[a[i]] != m.Tokenizer.Vocab[b[i]] {
			t.Fatalf("token %d: %q became %q", i, orig.Tokenizer.Vocab[a[i]], m.Tokenizer.Vocab[b[i]])
		}
	}
}

// Unstructured sparsity keeps every weight's slot: the plain file is as big
// as the unpruned one, only the compressed file shrinks.
func TestPruneCLISparsity(t *testing.T) {
	dir := t.TempDir()
	in, tok := sharedPath("models", "stories260K.bin"), sharedPath("models", "tok512.bin")
	orig, _, err := models.Open(in, tok)
	if err != nil {
		t.Fatal(err)
	}
	size := func(p string) int64 {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	dense := filepath.Join(dir, "dense.mote")
	denseZ := filepath.Join(dir, "dense.zst.mote")
	if _, err := writeModelFile(dense, orig, models.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := writeModelFile(denseZ, orig, models.WriteOptions{Compression: models.CompressZstd}); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(dir, "sparse.mote")
	sparseZ := filepath.Join(dir, "sparse.zst.mote")
	report := mustPrune(t, in, "-z", tok, "-o", sparse, "--sparsity", "0.5")
	mustPrune(t, in, "-z", tok, "-o", sparseZ, "--sparsity", "0.5", "--compress", "zstd")
	if !strings.Contains(report, "(50.00 %, magnitude)") {
		t.Fatalf("report:\n%s", report)
	}
	if size(sparse) != size(dense) {
		t.Fatalf("uncompressed: sparse %d bytes, dense %d", size(sparse), size(dense))
	}
	if size(sparseZ) >= size(denseZ)*9/10 {
		t.Fatalf("zstd: sparse %d bytes, dense %d", size(sparseZ), size(denseZ))
	}
	t.Logf("dense %d, zstd %d; 50 %% sparse zstd %d", size(dense), size(denseZ), size(sparseZ))
	m := openPruned(t, sparseZ)
	zeros := 0
	for _, v := range m.Weights.W1[2].F {
		if v == 0 {
			zeros++
		}
	}
	if zeros != len(m.Weights.W1[2].F)/2 {
		t.Fatalf("w1[2] has %d zeros of %d", zeros, len(m.Weights.W1[2].F))
	}
	// N:M with self-generated calibration (Wanda)
	nm := filepath.Join(dir, "nm.mote")
	report = mustPrune(t, in, "-z", tok, "-o", nm, "--nm", "2:4", "--method", "wanda", "--seed", "3")
	if !strings.Contains(report, "self-generated at temperature 1, seed 3") || !strings.Contains(report, "wanda") {
		t.Fatalf("report:\n%s", report)
	}
	openPruned(t, nm)
}

// --heads removes whole key/value groups (with their query heads) and keeps
// the head size: the file says so (config head_dim), its tensors have the
// pruned shapes, and it runs natively and after quantization.
func TestPruneCLIHeads(t *testing.T) {
	dir := t.TempDir()
	in, tok := sharedPath("models", "stories260K.bin"), sharedPath("models", "tok512.bin")
	for _, c := range []struct {
		frac          string
		heads, kv, qd int
	}{{"0.25", 6, 3, 48}, {"0.5", 4, 2, 32}} {
		out := filepath.Join(dir, "heads"+c.frac+".mote")
		report := mustPrune(t, in, "-z", tok, "-o", out, "--heads", c.frac)
		want := fmt.Sprintf("heads 8/4 kv -> %d/%d kv, 8 wide (query width 64 -> %d)", c.heads, c.kv, c.qd)
		if !strings.Contains(report, want) || !strings.Contains(report, "self-generated") {
			t.Errorf("--heads %s: report lacks %q:\n%s", c.frac, want, report)
		}
		m := openPruned(t, out)
		cfg := m.Config
		if cfg.NHeads != c.heads || cfg.NKVHeads != c.kv || cfg.HeadDim != 8 || cfg.Dim != 64 || cfg.NLayers != 5 || cfg.HiddenDim != 172 {
			t.Fatalf("--heads %s: config %+v", c.frac, cfg)
		}
		w := &m.Weights
		for l := 0; l < cfg.NLayers; l++ {
			if w.Wq[l].Rows != c.qd || w.Wq[l].Cols != 64 || w.Wk[l].Rows != 8*c.kv || w.Wv[l].Rows != 8*c.kv ||
				w.Wo[l].Rows != 64 || w.Wo[l].Cols != c.qd {
				t.Fatalf("--heads %s, layer %d: wq %dx%d wk %d wv %d wo %dx%d", c.frac, l, w.Wq[l].Rows, w.Wq[l].Cols,
					w.Wk[l].Rows, w.Wv[l].Rows, w.Wo[l].Rows, w.Wo[l].Cols)
			}
		}
		if info, _, code := runCLI(t, "info", out); code != 0 || !strings.Contains(info, fmt.Sprint(cfg.NumWeights(true))) ||
			!strings.Contains(info, fmt.Sprintf("head_dim     8 (query width %d;", c.qd)) {
			t.Errorf("--heads %s: info (exit %d) does not count %d weights:\n%s", c.frac, code, cfg.NumWeights(true), info)
		}
		text, errs, code := runCLI(t, "run", out, "-t", "0", "-n", "48", "-i", "Once upon a time")
		if code != 0 || !strings.HasPrefix(text, "Once upon a time") || len(text) < 40 {
			t.Fatalf("--heads %s: run: exit %d, %q, %s", c.frac, code, text, errs)
		}
		q := filepath.Join(dir, "heads"+c.frac+"-q4.mote")
		if _, errs, code := runCLI(t, "quant", out, "-o", q, "--type", "q4"); code != 0 {
			t.Fatalf("--heads %s: quant: exit %d: %s", c.frac, code, errs)
		}
		if qm := openPruned(t, q); qm.Config != cfg || qm.Weights.Wo[0].Type == core.F32 || qm.Weights.Wo[0].Cols != c.qd {
			t.Fatalf("--heads %s, q4: config %+v", c.frac, qm.Config)
		}
		if text, errs, code := runCLI(t, "run", q, "-t", "0", "-n", "48", "-i", "Once upon a time"); code != 0 || len(text) < 40 {
			t.Fatalf("--heads %s, q4: run: exit %d, %q, %s", c.frac, code, text, errs)
		}
	}
}

func TestPruneCLIErrors(t *testing.T) {
	dir := t.TempDir()
	in, tok := sharedPath("models", "stories260K.bin"), sharedPath("models", "tok512.bin")
	out := filepath.Join(dir, "o.mote")
	for _, args := range [][]string{
		{in, "-z", tok, "--ffn", "0.5"},                // no -o
		{"-z", tok, "-o", out, "--ffn", "0.5"},         // no input
		{in, "-z", tok, "-o", out},                     // nothing to prune
		{in, "-z", tok, "-o", out, "--ffn", "1.5"},     // not a fraction
		{in, "-z", tok, "-o", out, "--nm", "2-4"},      // not N:M
		{in, "-z", tok, "-o", out, "--method", "best"}, // unknown method
		{in, "-z", tok, "-o", out, "--frob", "1"},
		{in, "-z", tok, "-o", out, "--ffn"},
		{in, "-z", tok, "-o", out, "--ffn", "0.5", "--compress", "lz4"},
	} {
		if _, errs, code := runCLI(t, append([]string{"prune"}, args...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errs)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{in, "-z", tok, "-o", out, "--layers", "5"}, "at least one must stay"},
		{[]string{in, "-z", tok, "-o", out, "--heads", "0.1"}, "removes 0 of 4"},
		{[]string{in, "-z", tok, "-o", out, "--heads", "0.9"}, "removes 4 of 4"},
		{[]string{in, "-o", out, "--vocab", in}, "no tokenizer"},
		{[]string{filepath.Join(dir, "missing.bin"), "-o", out, "--ffn", "0.5"}, "missing.bin"},
	} {
		_, errs, code := runCLI(t, append([]string{"prune"}, c.args...)...)
		if code != 1 || !strings.Contains(errs, c.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", c.args, code, errs, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("a failed prune wrote its output")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed prunes left %d files", len(entries))
	}
}

// A pruned model, and the same model quantized after pruning, run in the
// WASI build under wazero and print what the native build prints.
func TestPruneCLIWasip1(t *testing.T) {
	dir := t.TempDir()
	calib := pruneTexts(t, dir, "calib.txt", 20)
	vocab := pruneTexts(t, dir, "vocab.txt", 50)
	out := filepath.Join(dir, "pruned.mote")
	mustPrune(t, sharedPath("models", "stories260K.bin"), "-z", sharedPath("models", "tok512.bin"), "-o", out,
		"--ffn", "0.5", "--vocab", vocab, "--calib", calib, "--sparsity", "0.3", "--compress", "zstd")
	quantized := filepath.Join(dir, "pruned-q4.mote")
	if _, errs, code := runCLI(t, "quant", out, "-o", quantized, "--type", "q4", "--calib", calib); code != 0 {
		t.Fatalf("quant after prune: exit %d: %s", code, errs)
	}
	if m := openPruned(t, quantized); m.Weights.W1[0].Type == core.F32 || m.Config.HiddenDim != 86 {
		t.Fatalf("quantized pruned model: %v, hidden %d", m.Weights.W1[0].Type, m.Config.HiddenDim)
	}

	wasm := filepath.Join(t.TempDir(), "mote.wasm")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", wasm, "../cmd/mote")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the WASI command: %v\n%s", err, msg)
	}
	code, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	mod, err := r.CompileModule(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"pruned.mote", "pruned-q4.mote"} {
		args := []string{"run", "/" + file, "-t", "0.8", "-s", "7", "-n", "96", "-i", "Lily and Ben"}
		var stdout, stderr bytes.Buffer
		cfg := wazero.NewModuleConfig().WithArgs(append([]string{"mote"}, args...)...).
			WithStdout(&stdout).WithStderr(&stderr).
			WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader).
			WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(dir, "/"))
		m, err := r.InstantiateModule(ctx, mod, cfg)
		if m != nil {
			m.Close(ctx)
		}
		var exit *sys.ExitError
		if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 0) {
			t.Fatalf("%s: wasip1 run: %v\n%s", file, err, stderr.String())
		}
		args[1] = filepath.Join(dir, file)
		native, nerrs, ncode := runCLI(t, args...)
		if ncode != 0 {
			t.Fatalf("%s: native run: exit %d: %s", file, ncode, nerrs)
		}
		if stdout.String() != native || len(native) < 50 {
			t.Fatalf("%s: wasip1 and native differ:\n wasip1: %q\n native: %q", file, stdout.String(), native)
		}
	}
}
