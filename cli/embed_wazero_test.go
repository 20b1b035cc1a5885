package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"

	"mote/engine"
	"mote/wasm/simd"
)

// The WASI command (GOOS=wasip1: the same main as the native CLI), plain
// and with the SIMD kernels (-tags mote_simd), run under wazero with the
// encoder's read-only folder mounted at "/".

var (
	wasiOnce  sync.Once
	wasiBuild map[bool]string
	wasiErr   error
)

// wasiModules builds both commands once per test binary (or takes
// $MOTE_DIST/mote.wasm for the plain one, as build.sh's tests do).
func wasiModules(t testing.TB) map[bool]string {
	t.Helper()
	wasiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mote-wasip1")
		if err != nil {
			wasiErr = err
			return
		}
		wasiBuild = map[bool]string{}
		for _, simdTag := range []bool{false, true} {
			out := filepath.Join(dir, fmt.Sprintf("mote-simd-%v.wasm", simdTag))
			args := []string{"build", "-trimpath", "-buildvcs=false", "-o", out}
			if simdTag {
				args = append(args, "-tags", "mote_simd")
			}
			cmd := exec.Command("go", append(args, "./cmd/mote")...)
			cmd.Dir = ".."
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if msg, err := cmd.CombinedOutput(); err != nil {
				wasiErr = fmt.Errorf("GOOS=wasip1 go build (simd %v): %v\n%s", simdTag, err, msg)
				return
			}
			wasiBuild[simdTag] = out
		}
	})
	if wasiErr != nil {
		t.Fatal(wasiErr)
	}
	return wasiBuild
}

// runWasip1 runs the WASI command with args, the encoder's folder mounted
// read-only at "/", and returns stdout, stderr and the exit code.
func runWasip1(t testing.TB, simdTag bool, args ...string) (string, string, int) {
	t.Helper()
	mods := wasiModules(t)
	ctx := context.Background()
	rt, err := simd.NewRuntime(ctx, filepath.Join(os.TempDir(), "mote-wazero-cache"))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	bin, err := os.ReadFile(mods[simdTag])
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cfg := wazero.NewModuleConfig().WithArgs(append([]string{"mote"}, args...)...).
		WithStdout(&out).WithStderr(&errb).WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader).
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(filepath.Dir(miniLM(t)), "/"))
	code, err := simd.RunWASI(ctx, rt, mod, cfg)
	if err != nil {
		t.Fatalf("wasip1 (simd %v) %q: %v\n%s", simdTag, args, err, errb.String())
	}
	return out.String(), errb.String(), code
}

const wasiModel = "/all-MiniLM-L6-v2-Q4_K_M.gguf"

// TestEmbedWasip1SameBits: `mote embed --json` prints the same bytes
// natively and in wasip1 under wazero, with and without SIMD kernels: the
// kernels are bit-identical, expf and the float64 LayerNorm and GELU
// (math.Erf is pure Go) are the same operations in every build.
func TestEmbedWasip1SameBits(t *testing.T) {
	model := miniLM(t)
	texts := []string{"The cat sat on the mat.", engine.BenchParagraph, "東京 café [MASK]"}
	for _, text := range texts {
		want, errs, code := runCLI(t, "embed", model, "-i", text, "--json")
		if code != 0 {
			t.Fatalf("native: %s", errs)
		}
		for _, simdTag := range []bool{false, true} {
			if !simdTag && text == engine.BenchParagraph {
				continue // 128 tokens without SIMD take seconds under wazero; the other texts cover the plain kernels
			}
			got, errs, code := runWasip1(t, simdTag, "embed", wasiModel, "-i", text, "--json")
			if code != 0 {
				t.Fatalf("wasip1 (simd %v): exit %d: %s", simdTag, code, errs)
			}
			if got != want {
				t.Errorf("wasip1 (simd %v) %.30q: output differs from native:\n%.200s\n%.200s", simdTag, text, got, want)
			}
		}
	}
	// and a mistake is reported the same way
	_, errs, code := runWasip1(t, true, "embed", "/missing.gguf", "-i", "x")
	if code != 1 || !strings.Contains(errs, "missing.gguf") {
		t.Errorf("missing model under wasip1: exit %d, %q", code, errs)
	}
}

// BenchmarkEmbedWasip1 reports embeddings per second of the 12-token
// sentence and the 128-token paragraph in wasip1 under wazero (compiler
// engine), with the SIMD kernels and (the sentence only) without, as
// `mote embed --bench` measures them inside the guest (the clock is the
// host's).
func BenchmarkEmbedWasip1(b *testing.B) {
	for _, simdTag := range []bool{false, true} {
		for _, text := range []string{engine.BenchSentence, engine.BenchParagraph} {
			if !simdTag && text == engine.BenchParagraph {
				continue // without SIMD, 128 tokens take minutes (about 35x the SIMD build's time)
			}
			var r struct {
				Tokens    int
				PerSecond float64 `json:"per_second"`
				MsPerTok  float64 `json:"ms_per_token"`
			}
			b.Run(fmt.Sprintf("simd=%v/tokens=%d", simdTag, map[bool]int{true: 12, false: 128}[text == engine.BenchSentence]), func(b *testing.B) {
				runs := max(b.N, 10)
				out, errs, code := runWasip1(b, simdTag, "embed", wasiModel, "--bench", "--json", "--runs", fmt.Sprint(runs), "-i", text)
				if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
					b.Fatalf("exit %d: %s %s", code, errs, out)
				}
				b.ReportMetric(r.PerSecond, "emb/s")
				b.ReportMetric(r.MsPerTok, "ms/token")
			})
		}
	}
}
