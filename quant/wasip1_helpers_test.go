package quant_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"

	"mote/cli"
	"mote/wasm/simd"
)

// buildWasip1 compiles cmd/mote for wasip1 (with build tags, if any) into
// dir and returns the module compiled by rt.
func buildWasip1(t *testing.T, ctx context.Context, rt wazero.Runtime, dir, tags string) wazero.CompiledModule {
	t.Helper()
	wasm := filepath.Join(dir, "mote-"+tags+".wasm")
	args := []string{"build", "-trimpath", "-buildvcs=false", "-o", wasm}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	build := exec.Command("go", append(args, "./cmd/mote")...)
	build.Dir = ".."
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=wasip1 go build -tags %q: %v\n%s", tags, err, out)
	}
	code, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.CompileModule(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

// runBoth runs `mote run /NAME ARGS...` natively and as mod under wazero
// (dir mounted read-only at /; the SIMD kernels wired when mod imports them)
// and returns both outputs.
func runBoth(t *testing.T, ctx context.Context, rt wazero.Runtime, mod wazero.CompiledModule, dir, name string, args []string) (native, wasip1 string) {
	t.Helper()
	var nout, nerr bytes.Buffer
	if c := cli.Main(append([]string{"run", filepath.Join(dir, name)}, args...), &nout, &nerr); c != 0 {
		t.Fatalf("native run %s %v: %s", name, args, nerr.String())
	}
	var wout, werr bytes.Buffer
	cfg := wazero.NewModuleConfig().
		WithArgs(append([]string{"mote", "run", "/" + name}, args...)...).
		WithStdout(&wout).WithStderr(&werr).WithSysWalltime().WithSysNanotime().
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(dir, "/"))
	exit, err := simd.RunWASI(ctx, rt, mod, cfg)
	if err != nil || exit != 0 {
		t.Fatalf("wasip1 run %s %v: exit %d, %v\n%s", name, args, exit, err, werr.String())
	}
	return nout.String(), wout.String()
}
