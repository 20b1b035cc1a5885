package quant

import (
	"fmt"
	"sort"
	"strings"
)

// Preset is a named quantization recipe (mote quant --type NAME).
type Preset struct {
	Name   string
	About  string
	Policy string // in the policy file format (ParsePolicy)
}

// Presets are mote quant's --type values. q8 and q4 are the recommended
// 8-bit and 4-bit recipes; the others are the points of the size/quality
// curve in docs/QUANT.md. Every spec uses importance-weighted scale search
// on the calibration data.
var Presets = []Preset{
	{"q8", "8-bit values in groups of 16, log8 scales, error feedback; int8 activations in groups of 16 (recommended 8-bit)",
		"act = 16\n* = 8b/uniform/g16/log8+gptq\n"},
	{"q8f", "8-bit values, one f16 scale per row, error feedback; float activations (the smallest and most accurate 8-bit file; float kernels are slower)",
		"act = 0\n* = 8b/uniform/grow/f16+gptq\n"},
	{"q6", "6-bit uniform groups of 16, log8 scales, error feedback; int8 activations in groups of 16",
		"act = 16\n* = 6b/uniform/g16/log8+gptq\n"},
	{"q5", "5-bit uniform groups of 16, log8 scales, error feedback; int8 activations in groups of 16",
		"act = 16\n* = 5b/uniform/g16/log8+gptq\n"},
	{"q4", "4-bit codebook fitted per tensor, groups of 16, log8 scales, error feedback; attn_k at 6 bits, attn_v and the embedding at 5, ffn_gate and ffn_up at 5 in groups of 64; int8 activations in groups of 16 (recommended 4-bit)",
		"act = 16\n* = 4b/learned/g16/log8+gptq\nwk = 6b/learned/g16/log8+gptq\nwv = 5b/learned/g16/log8+gptq\nemb = 5b/learned/g16/log8+gptq\nw1 = 5b/learned/g64/log8+gptq\nw3 = 5b/learned/g64/log8+gptq\n"},
	{"q4e8", "the embedding/classifier at 8 bits (per row), the rest as q4's default 4-bit codebook; int8 activations in groups of 16",
		"act = 16\n* = 4b/learned/g16/log8+gptq\nemb = 8b/uniform/grow/f16+gptq\n"},
	{"q4nl", "4-bit non-linear codebook (IQ4_NL's levels) in groups of 32, f16 scales, weighted scale search; int8 activations in groups of 16",
		"act = 16\n* = 4b/nl/g32/f16\n"},
	{"q4g", "4-bit uniform groups of 32 (-8..7), f16 scales, weighted scale search (like Q4_0 with a better scale); int8 activations in groups of 16",
		"act = 16\n* = 4b/uniform/g32/f16\n"},
	{"q3m", "3-bit codebook fitted per tensor, groups of 16, log8 scales, error feedback; attn_k at 5 bits, attn_v and the embedding at 4; int8 activations in groups of 16",
		"act = 16\n* = 3b/learned/g16/log8+gptq\nwk = 5b/learned/g16/log8+gptq\nwv = 4b/learned/g16/log8+gptq\nemb = 4b/learned/g16/log8+gptq\n"},
	{"q3", "3-bit codebook fitted per tensor, groups of 16, log8 scales, error feedback; int8 activations in groups of 16",
		"act = 16\n* = 3b/learned/g16/log8+gptq\n"},
	{"q2m", "2-bit codebook fitted per tensor, groups of 16, log8 scales, error feedback; attn_k at 4 bits, attn_v and the embedding at 3; int8 activations in groups of 16",
		"act = 16\n* = 2b/learned/g16/log8+gptq\nwk = 4b/learned/g16/log8+gptq\nwv = 3b/learned/g16/log8+gptq\nemb = 3b/learned/g16/log8+gptq\n"},
	{"q2", "2-bit codebook fitted per tensor, groups of 16, log8 scales, error feedback; int8 activations in groups of 16",
		"act = 16\n* = 2b/learned/g16/log8+gptq\n"},
}

// PresetPolicy returns the policy of a preset.
func PresetPolicy(name string) (*Policy, error) {
	for _, p := range Presets {
		if p.Name == name {
			return ParsePolicy(p.Policy)
		}
	}
	names := make([]string, len(Presets))
	for i, p := range Presets {
		names[i] = p.Name
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%w: unknown type %q (%s, or a spec such as 4b/nl/g32/f16)", ErrQuant, name, strings.Join(names, ", "))
}
