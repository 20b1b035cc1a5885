package wasmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"

	"mote/cli"
)

var (
	repoRoot  = filepath.Join("..", "..")
	sharedDir = filepath.Join(repoRoot, "..", "shared")
	modelsDir = filepath.Join(sharedDir, "models")
	refDir    = filepath.Join(sharedDir, "reference")
)

// refCase is one command line of ../shared/reference/README.md, as the
// arguments after `run MODEL -z TOKENIZER`, and as JavaScript options.
type refCase struct {
	file   string
	args   []string
	prompt string
	opts   map[string]any
}

var refCases = []refCase{
	{"greedy_once_upon_a_time.txt", []string{"-t", "0", "-n", "256", "-i", "Once upon a time"},
		"Once upon a time", map[string]any{"temperature": 0, "steps": 256}},
	{"greedy_lily_and_ben.txt", []string{"-t", "0", "-n", "256", "-i", "Lily and Ben"},
		"Lily and Ben", map[string]any{"temperature": 0, "steps": 256}},
	{"seed42_once_upon_a_time.txt", []string{"-t", "1.0", "-s", "42", "-n", "256", "-i", "Once upon a time"},
		"Once upon a time", map[string]any{"temperature": 1.0, "seed": 42, "steps": 256}},
	{"test_all_noprompt_n200.txt", []string{"-t", "0.0", "-n", "200"},
		"", map[string]any{"temperature": 0.0, "steps": 200}},
}

func reference(t testing.TB, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runNative runs `mote run` in-process on the shared model and returns
// stdout, stderr and the exit code.
func runNative(args ...string) (string, string, int) {
	full := append([]string{"run", filepath.Join(modelsDir, "stories260K.bin"), "-z", filepath.Join(modelsDir, "tok512.bin")}, args...)
	var out, errb bytes.Buffer
	code := cli.Main(full, &out, &errb)
	return out.String(), errb.String(), code
}

// The binaries under test, built once per run (or taken from $MOTE_DIST).
var (
	tmpDir string
	builds sync.Map // file name -> *build
)

type build struct {
	once sync.Once
	path string
	err  error
}

// targets are the files this package tests and how to build them; inDist
// marks those build.sh puts in dist/ (taken from $MOTE_DIST when set).
var targets = map[string]struct {
	goos, pkg, tags string
	inDist          bool
}{
	"mote.wasm":         {"wasip1", "./cmd/mote", "", true},
	"mote-js.wasm":      {"js", "./wasm/js", "", true},
	"mote-js-simd.wasm": {"js", "./wasm/js", "mote_simd", false},
}

// dist returns the path of a dist file, building it on first use.
func dist(t testing.TB, name string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(name, &build{})
	bd := v.(*build)
	bd.once.Do(func() { bd.path, bd.err = makeDist(name) })
	if bd.err != nil {
		t.Fatal(bd.err)
	}
	return bd.path
}

func makeDist(name string) (string, error) {
	tg, ok := targets[name]
	if !ok {
		return "", fmt.Errorf("no rule to build %s", name)
	}
	if d := os.Getenv("MOTE_DIST"); d != "" && tg.inDist {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("MOTE_DIST=%s but %v (run ./build.sh first)", d, err)
		}
		return p, nil
	}
	out := filepath.Join(tmpDir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-tags", tg.tags, "-o", out, tg.pkg)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOOS="+tg.goos, "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("GOOS=%s GOARCH=wasm go build -tags '%s' %s: %v\n%s", tg.goos, tg.tags, tg.pkg, err, msg)
	}
	return out, nil
}

// The wazero runtime, shared by all tests, with compiled code cached on disk.
var (
	rtOnce sync.Once
	rt     wazero.Runtime
	rtErr  error
	mods   sync.Map // path -> wazero.CompiledModule
)

func wazeroRuntime(t testing.TB) wazero.Runtime {
	t.Helper()
	rtOnce.Do(func() {
		dir, err := filepath.Abs(filepath.Join(repoRoot, ".cache", "wazero"))
		if err != nil {
			rtErr = err
			return
		}
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			rtErr = fmt.Errorf("wazero cache in %s: %v", dir, err)
			return
		}
		rt = wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	})
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return rt
}

// compiled compiles a dist file once per run.
func compiled(t testing.TB, name string) wazero.CompiledModule {
	t.Helper()
	p := dist(t, name)
	if m, ok := mods.Load(p); ok {
		return m.(wazero.CompiledModule)
	}
	bin, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wazeroRuntime(t).CompileModule(context.Background(), bin)
	if err != nil {
		t.Fatalf("compiling %s: %v", p, err)
	}
	mods.Store(p, m)
	return m
}

func TestMain(m *testing.M) {
	var err error
	if tmpDir, err = os.MkdirTemp("", "mote-wasmtest-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if rt != nil {
		rt.Close(context.Background())
	}
	os.RemoveAll(tmpDir)
	os.Exit(code)
}

// oneLine reports whether s is exactly one newline-terminated line.
func oneLine(s string) bool {
	return strings.HasSuffix(s, "\n") && strings.Count(s, "\n") == 1
}

var (
	wasiOnce sync.Once
	wasiErr  error
)
