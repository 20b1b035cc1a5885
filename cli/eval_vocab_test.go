//go:build !wasm

package cli

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// A vocabulary-pruned model against the model it was cut from: eval encodes
// the text with the base's tokenizer and remaps the ids. The pruned fp32
// model computes the base's logits on the kept tokens, so the KLD on them is
// zero up to rounding and its PPL is below the base's (the mass of the
// removed tokens goes to the kept ones); a text that needs a removed token
// is refused.
func TestEvalVocabPruned(t *testing.T) {
	dir := t.TempDir()
	in, tok := sharedPath("models", "stories260K.bin"), sharedPath("models", "tok512.bin")
	vocab := pruneTexts(t, dir, "vocab.txt", 30)
	out := filepath.Join(dir, "v.mote")
	mustPrune(t, in, "-z", tok, "-o", out, "--vocab", vocab)
	rep := evalJSON(t, out, "--base", in, "--base-tokenizer", tok, "--text", vocab, "--ctx", "64", "--json")
	kept, base := rep["vocab_kept"].(float64), rep["vocab_base"].(float64)
	kld, top1, lost := rep["kld_mean"].(float64), rep["top1"].(float64), rep["lost_mass"].(float64)
	ppl, bppl := rep["ppl"].(float64), rep["base_ppl"].(float64)
	switch {
	case base != 512 || kept >= 512 || kept <= 259:
		t.Errorf("vocabulary %v of %v", kept, base)
	case kld > 1e-6 || kld < 0:
		t.Errorf("KLD on the kept tokens %g, want ~0", kld)
	case !(lost > 0 && lost < 0.01):
		t.Errorf("lost mass %g", lost)
	case !(ppl <= bppl && ppl > bppl*0.95):
		t.Errorf("PPL %g against the base's %g", ppl, bppl)
	case top1 < 0.99 || rep["scored_tokens"].(float64) < 1000:
		t.Errorf("top-1 %g on %v tokens", top1, rep["scored_tokens"])
	case rep["kld_p99"] != nil || rep["rms_dp"] != nil:
		t.Errorf("99%% KLD / RMS Δp reported for a vocabulary-pruned model: %v", rep)
	}
	if math.IsNaN(kld) {
		t.Error("NaN KLD")
	}
	// a text the pruned vocabulary cannot encode as the base does
	other := smallText(t, 200000)
	if _, errs, code := runCLI(t, "eval", out, "--base", in, "--base-tokenizer", tok, "--text", other, "--ctx", "64"); code == 0 ||
		!strings.Contains(errs, "not in the pruned vocabulary") {
		t.Errorf("text with removed tokens: exit %d, %q", code, errs)
	}
	// without the base's tokenizer the vocabularies cannot be matched
	if _, errs, code := runCLI(t, "eval", out, "--base", in, "--text", vocab); code == 0 || !strings.Contains(errs, "--base-tokenizer") {
		t.Errorf("no base tokenizer: exit %d, %q", code, errs)
	}
}
