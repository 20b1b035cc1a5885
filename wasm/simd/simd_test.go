package simd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// buildWasip1 builds a wasip1 binary (go build or go test -c) into dir.
func buildWasip1(t *testing.T, dir, out string, args ...string) []byte {
	return buildWasip1B(t, dir, out, args...)
}

func buildWasip1B(t testing.TB, dir, out string, args ...string) []byte {
	t.Helper()
	path := filepath.Join(dir, out)
	cmd := exec.Command("go", append(append(args[:1:1], "-o", path), args[1:]...)...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, b)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func run(t *testing.T, guest []byte, mount string, args ...string) (string, string, int) {
	return runB(t, guest, mount, args...)
}

func runB(t testing.TB, guest []byte, mount string, args ...string) (string, string, int) {
	t.Helper()
	ctx := context.Background()
	rt, err := NewRuntime(ctx, cacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, guest)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cfg := wazero.NewModuleConfig().WithArgs(append([]string{"mote"}, args...)...).
		WithStdout(&out).WithStderr(&errb).WithSysWalltime().WithSysNanotime().
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(mount, "/"))
	code, err := RunWASI(ctx, rt, cm, cfg)
	if err != nil {
		t.Fatalf("%v: %v (stderr %s)", args, err, errb.String())
	}
	return out.String(), errb.String(), code
}

func cacheDir(t testing.TB) string {
	d := filepath.Join("..", "..", ".cache", "wazero")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return t.TempDir()
	}
	return d
}

// core's own tests, compiled for wasip1 with the SIMD kernels, prove the
// kernels bit-identical to the plain-Go ones under wazero.
func TestCoreTestsUnderWazeroSIMD(t *testing.T) {
	dir := t.TempDir()
	guest := buildWasip1(t, dir, "core.test.wasm", "test", "-c", "-tags", "mote_simd", "./core")
	core, _ := filepath.Abs(filepath.Join("..", "..", "core"))
	// twice: with the kernels wazero uses, and with the ones V8 uses
	// (no aliases), so that every exported variant is compared with Go
	for _, aliases := range []map[string]string{wazeroKernel, {}} {
		saved := wazeroKernel
		wazeroKernel = aliases
		out, errs, code := run(t, guest, core, "-test.v", "-test.run", "Fast|Quant|Forward")
		wazeroKernel = saved
		if code != 0 || !strings.Contains(out, "PASS") || !strings.Contains(out, "TestFastKernelsMatchRef") {
			t.Fatalf("aliases %v: exit %d\n%s\n%s", aliases, code, out, errs)
		}
	}
}

var referenceCases = []struct {
	file string
	args []string
}{
	{"greedy_once_upon_a_time.txt", []string{"-t", "0", "-n", "256", "-i", "Once upon a time"}},
	{"greedy_lily_and_ben.txt", []string{"-t", "0", "-n", "256", "-i", "Lily and Ben"}},
	{"seed42_once_upon_a_time.txt", []string{"-t", "1.0", "-s", "42", "-n", "256", "-i", "Once upon a time"}},
	{"test_all_noprompt_n200.txt", []string{"-t", "0.0", "-n", "200"}},
}

// The SIMD build prints the reference's bytes, like the plain builds.
func TestSIMDCommandMatchesReference(t *testing.T) {
	guest := buildWasip1(t, t.TempDir(), "mote-simd.wasm", "build", "-tags", "mote_simd", "./cmd/mote")
	models, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "models"))
	for _, rc := range referenceCases {
		want, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "reference", rc.file))
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"run", "/stories260K.bin", "-z", "/tok512.bin"}, rc.args...)
		out, errs, code := run(t, guest, models, args...)
		if code != 0 || out != string(want) {
			t.Errorf("%s: exit %d, stderr %s\n got %.120q\nwant %.120q", rc.file, code, errs, out, want)
		}
	}
}

// kernels.wasm must be what build.sh assembles from kernels.wat.
func TestKernelsAssembledFromSource(t *testing.T) {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatalf("wat2wasm (Debian package wabt) is needed to check kernels.wasm: %v", err)
	}
	out := filepath.Join(t.TempDir(), "k.wasm")
	if b, err := exec.Command(wat2wasm, "kernels.wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	b, _ := os.ReadFile(out)
	if !bytes.Equal(b, Kernels) {
		t.Fatal("kernels.wasm is stale: run ./build.sh")
	}
	_ = runtime.GOOS
}
