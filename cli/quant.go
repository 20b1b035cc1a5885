package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"mote/core"
	"mote/models"
	"mote/quant"
)

// quantOpts are mote quant's flags.
type quantOpts struct {
	in, out, typ, calib, policy, tokenizer string
	compress                               models.Compression
	seed                                   uint64
}

func parseQuant(args []string) (quantOpts, error) {
	o := quantOpts{compress: models.CompressZstd, seed: quant.CalibSeed}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		val := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%w: flag %s needs a value", errUsage, a)
			}
			i++
			return args[i], nil
		}
		var err error
		switch a {
		case "-o", "--out":
			o.out, err = val()
		case "--type", "-t":
			o.typ, err = val()
		case "--calib":
			o.calib, err = val()
		case "--policy":
			o.policy, err = val()
		case "-z", "--tokenizer":
			o.tokenizer, err = val()
		case "--compress", "-c":
			var v string
			if v, err = val(); err == nil {
				if o.compress, err = models.ParseCompression(v); err != nil {
					err = fmt.Errorf("%w: %v", errUsage, err)
				}
			}
		case "--seed":
			var v string
			if v, err = val(); err == nil {
				if o.seed, err = strconv.ParseUint(v, 10, 64); err != nil {
					err = fmt.Errorf("%w: bad seed %q", errUsage, v)
				}
			}
		default:
			err = fmt.Errorf("%w: unknown flag %s", errUsage, a)
		}
		if err != nil {
			return o, err
		}
	}
	switch {
	case len(pos) != 1:
		return o, fmt.Errorf("%w: quant needs one input model, got %d file arguments", errUsage, len(pos))
	case o.out == "":
		return o, fmt.Errorf("%w: quant needs -o OUT", errUsage)
	case o.typ == "" && o.policy == "":
		return o, fmt.Errorf("%w: quant needs --type TYPE or --policy FILE", errUsage)
	case o.typ != "" && o.policy != "":
		return o, fmt.Errorf("%w: --type and --policy exclude each other", errUsage)
	}
	o.in = pos[0]
	return o, nil
}

// quantPolicy resolves --type (a preset, or one spec for every matrix with
// float activations) or --policy FILE.
func quantPolicy(o *quantOpts) (*quant.Policy, string, error) {
	if o.policy != "" {
		b, err := os.ReadFile(o.policy)
		if err != nil {
			return nil, "", err
		}
		p, err := quant.ParsePolicy(string(b))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", o.policy, err)
		}
		return p, "policy " + o.policy, nil
	}
	if strings.Contains(o.typ, "/") {
		spec, err := quant.ParseSpec(o.typ)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %v", errUsage, err)
		}
		return &quant.Policy{Default: spec}, "type " + o.typ, nil
	}
	p, err := quant.PresetPolicy(o.typ)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", errUsage, err)
	}
	return p, "type " + o.typ, nil
}

func cmdQuant(args []string, stdout, stderr io.Writer) error {
	o, err := parseQuant(args)
	if err != nil {
		return err
	}
	pol, what, err := quantPolicy(&o)
	if err != nil {
		return err
	}
	start := time.Now()
	m, info, err := models.Open(o.in, o.tokenizer)
	if err != nil {
		return err
	}
	var seqs [][]int
	calibNote := ""
	if o.calib != "" {
		if m.Tokenizer == nil {
			return fmt.Errorf("%s: calibration text needs a tokenizer; give one with -z", o.in)
		}
		text, err := os.ReadFile(o.calib)
		if err != nil {
			return err
		}
		if seqs, err = quant.TextCalibration(m.Tokenizer, string(text), quant.CalibLen, quant.CalibSeqs); err != nil {
			return fmt.Errorf("%s: %w", o.calib, err)
		}
		calibNote = fmt.Sprintf("%d sequences from %s", len(seqs), o.calib)
	} else {
		seqs = quant.SelfCalibration(m, quant.CalibSeqs, quant.CalibLen, o.seed)
		calibNote = fmt.Sprintf("%d x %d tokens the model wrote itself (seed %d)", len(seqs), quant.CalibLen, o.seed)
	}
	cal, err := quant.Calibrate(m, seqs)
	if err != nil {
		return err
	}
	q, err := quant.QuantizeModel(m, cal, pol)
	if err != nil {
		return err
	}
	err = writeFileAtomic(o.out, func(w io.Writer) error {
		return models.WriteContainer(w, q.Model, models.WriteOptions{Compression: o.compress, Packed: q.Mats})
	})
	if err != nil {
		return err
	}
	st, err := os.Stat(o.out)
	if err != nil {
		return err
	}
	weights := m.Config.NumWeights(m.SharedClassifier())
	fmt.Fprintf(stderr, "mote: %s (%s, %d bytes) -> %s (%s, %d bytes, %.3f bits per weight, %s) in %v\n",
		o.in, formatName(info), info.FileBytes, o.out, what, st.Size(), float64(st.Size())*8/float64(weights),
		actNote(q.Model), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stderr, "mote: calibration: %s\n", calibNote)
	fmt.Fprintf(stderr, "mote: tensors: %s\n", specSummary(q))
	if m.Tokenizer == nil {
		fmt.Fprintf(stderr, "mote: %s carries no tokenizer; give one with -z when running it\n", o.out)
	}
	return nil
}

func actNote(m *core.Model) string {
	if m.ActGroup > 0 {
		return fmt.Sprintf("int8 activations in groups of %d", m.ActGroup)
	}
	return "float activations"
}

// specSummary counts the quantized matrices per stored form.
func specSummary(q *quant.Quantized) string {
	counts := map[string]int{}
	for _, p := range q.Mats {
		counts[fmt.Sprintf("%d-bit g%d %v", p.Bits, p.GroupSize, p.Scale)]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d x %s", counts[k], k)
	}
	return strings.Join(parts, ", ") + "; norms f32"
}
