package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// smallText writes the first stories of the TinyStories sample to a
// temporary file (a few chunks: enough to score, quick to run).
func smallText(t *testing.T, n int) string {
	t.Helper()
	b, err := os.ReadFile(sharedPath("models", "tinystories-valid-first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "small.txt")
	if err := os.WriteFile(p, b[:n], 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func evalJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, errs, code := runCLI(t, append([]string{"eval"}, args...)...)
	if code != 0 {
		t.Fatalf("eval %v: exit %d: %s", args, code, errs)
	}
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("--json must print one line, got %q", out)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bad JSON %q: %v", out, err)
	}
	return rep
}

// A model against itself: identical logits, so KLD 0, top-1 100 %, Δp 0.
func TestEvalSelfIsExact(t *testing.T) {
	model, tok := sharedPath("models", "stories260K.bin"), sharedPath("models", "tok512.bin")
	text := smallText(t, 6000)
	for _, proto := range [][]string{{"--ctx", "64"}, {"--docs", "--max-ctx", "128"}} {
		args := append([]string{model, "-z", tok, "--base", model, "--text", text, "--json"}, proto...)
		rep := evalJSON(t, args...)
		for _, k := range []string{"ppl", "base_ppl", "ln_ppl_ratio", "kld_mean", "kld_p99", "kld_max",
			"top1", "rms_dp", "scored_tokens", "file_bytes", "bits_per_weight"} {
			if _, ok := rep[k].(float64); !ok {
				t.Errorf("%v: field %s missing or not a number: %v", proto, k, rep[k])
			}
		}
		if rep["kld_mean"] != 0.0 || rep["kld_max"] != 0.0 || rep["top1"] != 1.0 || rep["rms_dp"] != 0.0 || rep["ln_ppl_ratio"] != 0.0 {
			t.Errorf("%v: self-comparison not exact: %v", proto, rep)
		}
		if rep["ppl"] != rep["base_ppl"] || !(rep["ppl"].(float64) > 1) {
			t.Errorf("%v: ppl %v, base %v", proto, rep["ppl"], rep["base_ppl"])
		}
		if rep["file_bytes"] != 1056540.0 || rep["bits_per_weight"] != 1056540.0*8/260032 {
			t.Errorf("%v: file_bytes %v bits_per_weight %v", proto, rep["file_bytes"], rep["bits_per_weight"])
		}
	}
}

// Against a different model the figures must be positive and the text
// report must carry them.
func TestEvalAgainstQ8(t *testing.T) {
	model, tok := sharedPath("models", "stories260K_q80_gs4.bin"), sharedPath("models", "tok512.bin")
	base := sharedPath("models", "stories260K.bin")
	text := smallText(t, 6000)
	rep := evalJSON(t, model, "-z", tok, "--base", base, "--text", text, "--ctx", "64", "--json")
	kld, top1 := rep["kld_mean"].(float64), rep["top1"].(float64)
	if !(kld > 0 && kld < 0.01) || !(top1 > 0.9 && top1 < 1) {
		t.Errorf("q8 gs4 against fp32: kld %v top1 %v", kld, top1)
	}
	if !(rep["kld_p99"].(float64) >= kld && rep["kld_max"].(float64) >= rep["kld_p99"].(float64)) {
		t.Errorf("percentiles out of order: %v", rep)
	}
	// 6000 bytes are ~1500 tokens: 64-token chunks score 31 each
	if n := rep["scored_tokens"].(float64); n != 31*rep["segments"].(float64) {
		t.Errorf("scored %v in %v chunks", n, rep["segments"])
	}
	out, errs, code := runCLI(t, "eval", model, "-z", tok, "--base", base, "--text", text, "--ctx", "64")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"PPL", "KLD", "top-1", "bits per weight", "int8 in groups of 4"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalUsageErrors(t *testing.T) {
	model := sharedPath("models", "stories260K.bin")
	tok := sharedPath("models", "tok512.bin")
	text := sharedPath("models", "tinystories-valid-first1000.txt")
	for _, args := range [][]string{
		{"eval", model, "-z", tok},                               // no --text
		{"eval", model, "-z", tok, "--text", text, "--ctx", "0"}, // bad ctx
		{"eval", model, "-z", tok, "--text", text, "--ctx", "x"}, // bad ctx
		{"eval", model, "-z", tok, "--text", text, "--ctx", "64", "--docs"},
		{"eval", model, "-z", tok, "--text", text, "--max-ctx", "64"}, // --max-ctx without --docs
		{"eval", model, "-z", tok, "--text", text, "--ctx", "1024"},   // beyond the model's context
		{"eval", model, "-z", tok, "--text", text, "--frob"},
	} {
		out, errs, code := runCLI(t, args...)
		if code != 2 || out != "" || !strings.HasPrefix(errs, "mote: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}

// Long runs show a progress bar on stderr; stdout keeps only the JSON.
func TestEvalProgressOnStderr(t *testing.T) {
	defer func(v int) { evalProgressMin = v }(evalProgressMin)
	evalProgressMin = 1
	model, tok := sharedPath("models", "stories260K.bin"), sharedPath("models", "tok512.bin")
	out, errs, code := runCLI(t, "eval", model, "-z", tok, "--text", smallText(t, 3000), "--ctx", "64", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "eval") || !strings.Contains(errs, "100%") {
		t.Errorf("no progress bar on stderr: %q", errs)
	}
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "{") {
		t.Errorf("stdout is not one JSON line: %q", out)
	}
}
