package wasmtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"mote/cli"
)

// runWasi runs dist/mote.wasm with args (after the program name) and dir
// mounted read-only at "/", and returns stdout, stderr and the exit code.
func runWasi(t testing.TB, dir string, args ...string) (string, string, int) {
	t.Helper()
	return runWasiFS(t, wazero.NewFSConfig().WithReadOnlyDirMount(dir, "/"), args...)
}

// runWasiFS is runWasi with any file system configuration.
func runWasiFS(t testing.TB, fsc wazero.FSConfig, args ...string) (string, string, int) {
	t.Helper()
	r := wazeroRuntime(t)
	ctx := context.Background()
	wasiOnce.Do(func() { _, wasiErr = wasi_snapshot_preview1.Instantiate(ctx, r) })
	if wasiErr != nil {
		t.Fatal(wasiErr)
	}
	mod := compiled(t, "mote.wasm")
	var out, errb bytes.Buffer
	cfg := wazero.NewModuleConfig().WithName("").
		WithArgs(append([]string{"mote"}, args...)...).
		WithStdout(&out).WithStderr(&errb).
		WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader).
		WithFSConfig(fsc)
	m, err := r.InstantiateModule(ctx, mod, cfg)
	if m != nil {
		m.Close(ctx)
	}
	var exit *sys.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), errb.String(), int(exit.ExitCode())
	case err != nil:
		t.Fatalf("running mote.wasm %q: %v\nstderr: %s", args, err, errb.String())
	}
	return out.String(), errb.String(), 0 // _start returned without proc_exit
}

// TestWasip1Imports checks that the WASI command needs nothing but WASI
// preview 1, so any WASI runtime can run it.
func TestWasip1Imports(t *testing.T) {
	mod := compiled(t, "mote.wasm")
	fns := mod.ImportedFunctions()
	names := map[string]bool{}
	for _, f := range fns {
		module, name, _ := f.Import()
		if module != wasi_snapshot_preview1.ModuleName {
			t.Errorf("mote.wasm imports %s.%s; only %s is allowed", module, name, wasi_snapshot_preview1.ModuleName)
		}
		names[name] = true
	}
	for _, need := range []string{"fd_write", "path_open", "proc_exit"} {
		if !names[need] {
			t.Errorf("mote.wasm does not import %s (imports: %v)", need, names)
		}
	}
	if ms := mod.ImportedMemories(); len(ms) != 0 {
		t.Errorf("mote.wasm imports %d memories", len(ms))
	}
}

// TestJSImports checks that the js build needs only Go's own glue (wasm_exec.js).
func TestJSImports(t *testing.T) {
	fns := compiled(t, "mote-js.wasm").ImportedFunctions()
	if len(fns) == 0 {
		t.Fatal("mote-js.wasm imports nothing; is it the js build?")
	}
	for _, f := range fns {
		if module, name, _ := f.Import(); module != "gojs" {
			t.Errorf("mote-js.wasm imports %s.%s; only gojs (wasm_exec.js) is allowed", module, name)
		}
	}
}

// TestWasip1Reference runs the reference command lines under wazero: stdout
// must be the reference's bytes and the native command's.
func TestWasip1Reference(t *testing.T) {
	for _, c := range refCases {
		t.Run(c.file, func(t *testing.T) {
			want := reference(t, c.file)
			got, stderr, code := runWasi(t, modelsDir, append([]string{"run", "/stories260K.bin", "-z", "/tok512.bin"}, c.args...)...)
			if code != 0 {
				t.Fatalf("exit code %d, stderr: %s", code, stderr)
			}
			if got != want {
				t.Errorf("wasip1 stdout differs from the reference\n got: %q\nwant: %q", got, want)
			}
			native, nerr, ncode := runNative(c.args...)
			if ncode != 0 {
				t.Fatalf("native exit code %d, stderr: %s", ncode, nerr)
			}
			if got != native {
				t.Errorf("wasip1 stdout differs from the native run\n  wasip1: %q\n  native: %q", got, native)
			}
			if !tokPerSec.MatchString(stderr) {
				t.Errorf("stderr has no tok/s line: %q", stderr)
			}
		})
	}
}

// TestWasip1BadModel: a file that is no model exits 1 with one line on stderr.
func TestWasip1BadModel(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.bin"), []byte("GGUF but not really a model, just some bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.bin"), bytes.Repeat([]byte{0xff}, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"run", "/bad.bin", "-z", "/bad.bin", "-n", "8"},
		{"run", "/junk.bin", "-n", "8"},
		{"run", "/missing.bin", "-n", "8"},
	} {
		out, stderr, code := runWasi(t, dir, args...)
		if code != 1 || out != "" || !oneLine(stderr) || !strings.HasPrefix(stderr, "mote: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1, no stdout, one 'mote: ' line", args, code, out, stderr)
		}
	}
}

// TestWasip1ConvertDefaultModel converts the GGUF to a .mote container under
// WASI (byte-identical to the native conversion), then runs it as the
// default model (no MODEL argument: /stories260K.mote at the WASI root).
func TestWasip1ConvertDefaultModel(t *testing.T) {
	dir := t.TempDir()
	gguf, err := os.ReadFile(filepath.Join(modelsDir, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.gguf"), gguf, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runWasiFS(t, wazero.NewFSConfig().WithDirMount(dir, "/"), "convert", "/in.gguf", "/stories260K.mote")
	if code != 0 {
		t.Fatalf("wasip1 convert: exit %d, stderr %s", code, stderr)
	}
	wasmMote, err := os.ReadFile(filepath.Join(dir, "stories260K.mote"))
	if err != nil {
		t.Fatal(err)
	}
	native := filepath.Join(t.TempDir(), "native.mote")
	if code := cli.Main([]string{"convert", filepath.Join(dir, "in.gguf"), native}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("native convert: exit %d", code)
	}
	nativeMote, err := os.ReadFile(native)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wasmMote, nativeMote) {
		t.Errorf("the wasip1 conversion (%d bytes) differs from the native one (%d bytes)", len(wasmMote), len(nativeMote))
	}

	c := refCases[0]
	got, stderr, code := runWasi(t, dir, append([]string{"run"}, c.args...)...)
	if code != 0 {
		t.Fatalf("wasip1 run of the default model: exit %d, stderr %s", code, stderr)
	}
	if want := reference(t, c.file); got != want {
		t.Errorf("default model under wasip1 differs from the reference\n got: %q\nwant: %q", got, want)
	}
}

var tokPerSec = regexp.MustCompile(`achieved tok/s: ([0-9.]+)\n`)

// benchArgs is a greedy run over the whole context.
var benchArgs = []string{"-t", "0", "-n", "512", "-i", "Once upon a time"}

// BenchmarkDecodeWasip1 reports the tok/s mote.wasm measures itself under
// wazero's compiler (decode only: load and compile time excluded).
func BenchmarkDecodeWasip1(b *testing.B) {
	runWasi(b, modelsDir, "help") // compile and instantiate WASI outside the timing
	benchDecode(b, func() (string, int) {
		_, stderr, code := runWasi(b, modelsDir, append([]string{"run", "/stories260K.bin", "-z", "/tok512.bin"}, benchArgs...)...)
		return stderr, code
	})
}

// BenchmarkDecodeNative is BenchmarkDecodeWasip1's native twin (the same
// command, in-process).
func BenchmarkDecodeNative(b *testing.B) {
	benchDecode(b, func() (string, int) {
		_, stderr, code := runNative(benchArgs...)
		return stderr, code
	})
}

func benchDecode(b *testing.B, run func() (stderr string, code int)) {
	var sum float64
	n := 0
	for b.Loop() {
		stderr, code := run()
		m := tokPerSec.FindStringSubmatch(stderr)
		if code != 0 || m == nil {
			b.Fatalf("exit %d, stderr %q", code, stderr)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			b.Fatal(err)
		}
		sum += v
		n++
	}
	b.ReportMetric(sum/float64(n), "tok/s")
}
