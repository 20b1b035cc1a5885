package quant_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mote/cli"
	"mote/wasm/simd"
)

// Quantized files run in the WASI build under wazero and print what the
// native command prints: 3-bit codebook matrices (core Q4), 6- and 8-bit
// ones (core Q8), log8 and f16 scales, with int8 activations and with float
// activations.
func TestQuantizedRunsInWasip1(t *testing.T) {
	dir := t.TempDir()
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
	rt, err := simd.NewRuntime(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	mod := buildWasip1(t, ctx, rt, dir, "")
	for name := range policies {
		for _, run := range [][]string{
			{"-t", "0", "-n", "120", "-i", "Once upon a time"},
			{"-t", "1", "-s", "42", "-n", "120", "-i", "Lily and Ben"},
		} {
			nout, wout := runBoth(t, ctx, rt, mod, dir, name, run)
			if wout != nout || !strings.HasPrefix(wout, run[len(run)-1]) {
				t.Errorf("%s %v: wasip1 printed\n%q\nnative printed\n%q", name, run, wout, nout)
			}
		}
	}
}
