package quant_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"mote/cli"
	"mote/models"
	"mote/wasm/simd"
)

// A head-pruned model (fewer heads of the same size: core.Config.HeadDim),
// quantized after pruning, runs in the WASI build under wazero, with the
// plain Go kernels and with the SIMD kernels (the attention kernel takes the
// head size as a parameter), and prints what the native command prints.
func TestHeadsPrunedQuantizedRunsInWasip1(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join("..", "..", "shared", "models")
	files := map[string]int{} // file -> query width
	for _, r := range []struct {
		name, heads, typ string
		qDim             int
	}{{"heads50-q4.mote", "0.5", "q4", 32}, {"heads25-q3m.mote", "0.25", "q3m", 48}} {
		pruned := filepath.Join(dir, r.name+".pruned")
		var errb bytes.Buffer
		args := []string{"prune", filepath.Join(shared, "stories260K.bin"), "-z", filepath.Join(shared, "tok512.bin"),
			"-o", pruned, "--heads", r.heads}
		if code := cli.Main(args, &bytes.Buffer{}, &errb); code != 0 {
			t.Fatalf("mote %v: %s", args, errb.String())
		}
		args = []string{"quant", pruned, "-o", filepath.Join(dir, r.name), "--type", r.typ}
		if code := cli.Main(args, &bytes.Buffer{}, &errb); code != 0 {
			t.Fatalf("mote %v: %s", args, errb.String())
		}
		m, _, err := models.Open(filepath.Join(dir, r.name), "")
		if err != nil {
			t.Fatal(err)
		}
		if c := m.Config; c.QDim() != r.qDim || c.HeadDim != 8 || m.ActGroup == 0 || m.Weights.Wo[0].Cols != r.qDim {
			t.Fatalf("%s: config %+v, act group %d", r.name, c, m.ActGroup)
		}
		files[r.name] = r.qDim
	}

	ctx := context.Background()
	rt, err := simd.NewRuntime(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	for _, tags := range []string{"", "mote_simd"} {
		mod := buildWasip1(t, ctx, rt, dir, tags)
		for name := range files {
			nout, wout := runBoth(t, ctx, rt, mod, dir, name, []string{"-t", "1", "-s", "42", "-n", "120", "-i", "Lily and Ben"})
			if wout != nout || !strings.HasPrefix(wout, "Lily and Ben") || len(wout) < 100 {
				t.Errorf("%s (tags %q): wasip1 printed\n%q\nnative printed\n%q", name, tags, wout, nout)
			}
		}
	}
}
