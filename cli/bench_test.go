package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchJSON(t *testing.T) {
	for _, typ := range []string{"f32", "q8", "q4"} {
		out, errs, code := runCLI(t, "bench", "--shape", "260K", "--type", typ, "-n", "16", "--runs", "2", "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if strings.Count(out, "\n") != 1 {
			t.Fatalf("want one JSON line, got %q", out)
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"model", "type", "target", "load_ms", "ttft_ms", "tok_per_s", "tok_per_s_min",
			"tok_per_s_max", "peak_bytes", "allocs_per_token"} {
			if _, ok := r[k]; !ok {
				t.Errorf("%s: no %q in %s", typ, k, out)
			}
		}
		if r["type"] != typ || r["target"] != "native" || !(r["tok_per_s"].(float64) > 0) {
			t.Errorf("%s: %s", typ, out)
		}
		// the profile: the step's matrix products alone take some of a step
		if mv, _ := r["matvec_ms_per_token"].(float64); !(mv > 0) {
			t.Errorf("%s: matvec_ms_per_token %v", typ, r["matvec_ms_per_token"])
		}
	}
	// a real model file too
	out, errs, code := runCLI(t, "bench", sharedPath("models", "stories260K.bin"), "-n", "8", "--runs", "1", "--json")
	if code != 0 || !strings.Contains(out, `"type":"f32"`) {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	for _, bad := range [][]string{{"bench", "--shape", "7B"}, {"bench", "--shape", "15M", "--type", "q3"},
		{"bench", "--target", "gpu", "--shape", "260K"}, {"bench", "--matrix", "260K"}, {"bench", "-n", "1", "--shape", "260K"}} {
		if _, _, code := runCLI(t, bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
