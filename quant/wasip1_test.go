package quant_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"mote/cli"
)

// Quantized files run in the WASI build under wazero and print what the
// native command prints: 3-bit codebook matrices (core Q4), 6- and 8-bit
// ones (core Q8), log8 and f16 scales, with int8 activations and with float
// activations.
func TestQuantizedRunsInWasip1(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "mote.wasm")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", wasm, "./cmd/mote")
	build.Dir = filepath.Join("..")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=wasip1 GOARCH=wasm go build ./cmd/mote: %v\n%s", err, out)
	}
	models := filepath.Join("..", "..", "shared", "models")
	policies := map[string]string{
		"int8act.mote":  "act = 16\n* = 3b/learned/g16/log8+gptq\nwk = 6b/uniform/g32/f16\ntoken_embd = 8b/uniform/grow/f16\n",
		"floatact.mote": "act = 0\n* = 4b/nl/g16/log8\nw2 = 5b/learned/g16/log8\nwv = 2b/learned/g8/f32\n",
	}
	for name, pol := range policies {
		pf := filepath.Join(dir, name+".policy")
		if err := os.WriteFile(pf, []byte(pol), 0o644); err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		args := []string{"quant", filepath.Join(models, "stories260K.bin"), "-z", filepath.Join(models, "tok512.bin"),
			"-o", filepath.Join(dir, name), "--policy", pf}
		if code := cli.Main(args, &bytes.Buffer{}, &errb); code != 0 {
			t.Fatalf("mote %v: %s", args, errb.String())
		}
	}

	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	code, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := r.CompileModule(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	for name := range policies {
		for _, run := range [][]string{
			{"-t", "0", "-n", "120", "-i", "Once upon a time"},
			{"-t", "1", "-s", "42", "-n", "120", "-i", "Lily and Ben"},
		} {
			var nout, nerr bytes.Buffer
			if c := cli.Main(append([]string{"run", filepath.Join(dir, name)}, run...), &nout, &nerr); c != 0 {
				t.Fatalf("native run %s: %s", name, nerr.String())
			}
			var wout, werr bytes.Buffer
			cfg := wazero.NewModuleConfig().WithName("").
				WithArgs(append([]string{"mote", "run", "/" + name}, run...)...).
				WithStdout(&wout).WithStderr(&werr).WithSysWalltime().WithSysNanotime().
				WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(dir, "/"))
			m, err := r.InstantiateModule(ctx, mod, cfg)
			if m != nil {
				m.Close(ctx)
			}
			var exit *sys.ExitError
			if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 0) {
				t.Fatalf("wasip1 run %s %v: %v\n%s", name, run, err, werr.String())
			}
			if wout.String() != nout.String() || !strings.HasPrefix(wout.String(), run[len(run)-1]) {
				t.Errorf("%s %v: wasip1 printed\n%q\nnative printed\n%q", name, run, wout.String(), nout.String())
			}
		}
	}
}
