package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"mote/core"
	"mote/models"
	"mote/quant"
)

// evalOpts are mote eval's flags.
type evalOpts struct {
	model, base, text, tokenizer string
	baseTokenizer                string // the base's, when BASE has none (vocabulary-pruned MODEL)
	ctx, maxCtx                  int
	docs, json                   bool
	threads                      int
}

func parseEval(args []string) (evalOpts, error) {
	o := evalOpts{maxCtx: 512}
	var err error
	o.model, args, err = modelArg(args)
	if err != nil {
		return o, err
	}
	ctxSet, maxSet := false, false
	for i := 0; i < len(args); i++ {
		flag := args[i]
		val := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%w: flag %s needs a value", errUsage, flag)
			}
			i++
			return args[i], nil
		}
		num := func() (int, error) {
			v, err := val()
			if err != nil {
				return 0, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("%w: bad value %q for %s", errUsage, v, flag)
			}
			return n, nil
		}
		switch flag {
		case "--base":
			o.base, err = val()
		case "--text":
			o.text, err = val()
		case "-z", "--tokenizer":
			o.tokenizer, err = val()
		case "--base-tokenizer":
			o.baseTokenizer, err = val()
		case "--ctx":
			o.ctx, err = num()
			ctxSet = true
		case "--max-ctx":
			o.maxCtx, err = num()
			maxSet = true
		case "--threads":
			o.threads, err = num()
		case "--docs":
			o.docs = true
		case "--json":
			o.json = true
		default:
			err = fmt.Errorf("%w: unknown flag %s", errUsage, flag)
		}
		if err != nil {
			return o, err
		}
	}
	switch {
	case o.text == "":
		return o, fmt.Errorf("%w: eval needs --text FILE", errUsage)
	case o.docs && ctxSet:
		return o, fmt.Errorf("%w: --ctx and --docs exclude each other", errUsage)
	case maxSet && !o.docs:
		return o, fmt.Errorf("%w: --max-ctx goes with --docs", errUsage)
	case !o.docs && !ctxSet:
		o.ctx = 256
	}
	return o, nil
}

// evalProgressMin is the number of forward positions from which eval shows
// a progress bar on stderr (20,000 take a few seconds on one core).
var evalProgressMin = 20000

// evalReport is the --json output: one line, fields in a fixed order.
type evalReport struct {
	Model         string   `json:"model"`
	Base          string   `json:"base,omitempty"`
	Protocol      string   `json:"protocol"`
	Ctx           int      `json:"ctx"`
	Segments      int      `json:"segments"`
	ScoredTokens  int      `json:"scored_tokens"`
	PPL           float64  `json:"ppl"`
	NLL           float64  `json:"nll"`
	BasePPL       *float64 `json:"base_ppl"`
	LnPPLRatio    *float64 `json:"ln_ppl_ratio"`
	KLDMean       *float64 `json:"kld_mean"`
	KLDP99        *float64 `json:"kld_p99"`
	KLDMax        *float64 `json:"kld_max"`
	Top1          *float64 `json:"top1"`
	RMSDp         *float64 `json:"rms_dp"`
	FileBytes     int64    `json:"file_bytes"`
	Weights       int64    `json:"weights"`
	BitsPerWeight float64  `json:"bits_per_weight"`
	ActGroup      int      `json:"act_group"`
	Seconds       float64  `json:"seconds"`
	// vocabulary-pruned model against its base only
	VocabKept   int      `json:"vocab_kept,omitempty"`
	VocabBase   int      `json:"vocab_base,omitempty"`
	LostMass    *float64 `json:"lost_mass,omitempty"`
	LostMassMax *float64 `json:"lost_mass_max,omitempty"`
}

func cmdEval(args []string, stdout, stderr io.Writer) error {
	o, err := parseEval(args)
	if err != nil {
		return err
	}
	m, info, err := loadModel(o.model, o.tokenizer)
	if err != nil {
		return err
	}
	var base *core.Model
	if o.base != "" {
		if base, _, err = models.Open(o.base, o.baseTokenizer); err != nil {
			return err
		}
		if base.Config.VocabSize != m.Config.VocabSize {
			// a vocabulary-pruned model (mote prune --vocab) against the
			// model it was cut from: the text is encoded with the base's
			// tokenizer and the ids remapped (quant.CompareVocabPruned)
			if base.Tokenizer == nil || m.Tokenizer == nil || m.Config.VocabSize > base.Config.VocabSize {
				return fmt.Errorf("eval: %s has %d tokens, %s %d: not the same vocabulary (a vocabulary-pruned model is compared through both tokenizers: give the base's with --base-tokenizer)",
					o.model, m.Config.VocabSize, o.base, base.Config.VocabSize)
			}
			return evalVocabPruned(o, m, base, info, stdout, stderr)
		}
	}
	raw, err := os.ReadFile(o.text)
	if err != nil {
		return err
	}
	text := string(raw)
	start := time.Now()
	rep := evalReport{Model: o.model, Base: o.base}
	segs, err := evalSegments(o, m, m.Tokenizer, text, &rep)
	if err != nil {
		return err
	}
	opt := quant.Options{Workers: o.threads}
	positions := 0
	for _, s := range segs {
		positions += len(s.Tokens) - 1
	}
	if positions >= evalProgressMin {
		opt.Progress = countProgress(stderr, len(segs), "eval")
	}
	r, err := quant.Evaluate(m, base, segs, opt)
	if err != nil {
		return err
	}
	rep.Segments, rep.ScoredTokens = len(segs), r.Scored
	rep.PPL, rep.NLL = r.PPL, r.NLL
	if r.HasBase {
		f := func(v float64) *float64 { return &v }
		rep.BasePPL, rep.LnPPLRatio = f(r.BasePPL), f(r.LnRatio)
		rep.KLDMean, rep.KLDP99, rep.KLDMax = f(r.KLDMean), f(r.KLDP99), f(r.KLDMax)
		rep.Top1, rep.RMSDp = f(r.Top1), f(r.RMSDp)
	}
	rep.finish(m, info, start)
	if o.json {
		return writeEvalJSON(stdout, &rep)
	}
	return writeEvalText(stdout, &rep, r)
}

// evalSegments cuts text, encoded with tok, by the chosen protocol.
func evalSegments(o evalOpts, m *core.Model, tok *core.Tokenizer, text string, rep *evalReport) ([]quant.Segment, error) {
	if o.docs {
		if o.maxCtx > m.Config.SeqLen {
			return nil, fmt.Errorf("%w: --max-ctx %d exceeds the model's context of %d", errUsage, o.maxCtx, m.Config.SeqLen)
		}
		rep.Protocol, rep.Ctx = "docs", o.maxCtx
		return quant.DocSegments(tok, text, o.maxCtx)
	}
	if o.ctx > m.Config.SeqLen {
		return nil, fmt.Errorf("%w: --ctx %d exceeds the model's context of %d", errUsage, o.ctx, m.Config.SeqLen)
	}
	rep.Protocol, rep.Ctx = "ctx", o.ctx
	return quant.ChunkSegments(quant.TextTokens(tok, text), o.ctx, tok.BOS)
}

// evalVocabPruned compares a vocabulary-pruned model with its base on the
// base's encoding of the text, ids remapped. The KLD and top-1 are against
// the base renormalised on the kept tokens; lost_mass is the base's mean
// probability on the removed ones (99 % KLD, max and RMS Δp stay null).
func evalVocabPruned(o evalOpts, m, base *core.Model, info *models.Info, stdout, stderr io.Writer) error {
	raw, err := os.ReadFile(o.text)
	if err != nil {
		return err
	}
	start := time.Now()
	rep := evalReport{Model: o.model, Base: o.base}
	segs, err := evalSegments(o, m, base.Tokenizer, string(raw), &rep)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "eval: %s keeps %d of %s's %d tokens: comparing on the base's encoding, ids remapped\n",
		o.model, m.Config.VocabSize, o.base, base.Config.VocabSize)
	r, err := quant.CompareVocabPruned(m, base, segs)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	f := func(v float64) *float64 { return &v }
	rep.Segments, rep.ScoredTokens = len(segs), r.Scored
	rep.PPL, rep.NLL = r.PPL, r.NLL
	rep.BasePPL, rep.LnPPLRatio = f(r.BasePPL), f(math.Log(r.PPL/r.BasePPL))
	rep.KLDMean, rep.Top1 = f(r.KLDKept), f(r.Top1)
	rep.VocabKept, rep.VocabBase, rep.LostMass, rep.LostMassMax = r.Kept, r.Base, f(r.LostMass), f(r.LostMassMax)
	rep.finish(m, info, start)
	if o.json {
		return writeEvalJSON(stdout, &rep)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "model            %s (vocabulary %d of the base's %d)\n", rep.Model, r.Kept, r.Base)
	fmt.Fprintf(&b, "file             %d bytes, %d weights, %.3f bits per weight\n", rep.FileBytes, rep.Weights, rep.BitsPerWeight)
	fmt.Fprintf(&b, "protocol         %s, %d segments, %d scored tokens (the base's encoding)\n", rep.Protocol, rep.Segments, rep.ScoredTokens)
	fmt.Fprintf(&b, "PPL              %.4f (mean NLL %.6f)\n", r.PPL, r.NLL)
	fmt.Fprintf(&b, "base             %s: PPL %.4f\n", rep.Base, r.BasePPL)
	fmt.Fprintf(&b, "ln(PPL/PPL_base) %.6f\n", *rep.LnPPLRatio)
	fmt.Fprintf(&b, "lost mass        mean %.6f, max %.6f (the base's probability on removed tokens)\n", r.LostMass, r.LostMassMax)
	fmt.Fprintf(&b, "KLD (kept)       mean %.6f (against the base renormalised on the kept tokens)\n", r.KLDKept)
	fmt.Fprintf(&b, "top-1 agreement  %.3f %%\n", 100*r.Top1)
	fmt.Fprintf(&b, "time             %.1f s\n", rep.Seconds)
	_, err = io.WriteString(stdout, b.String())
	return err
}

// finish fills what every report carries about the file and the run.
func (rep *evalReport) finish(m *core.Model, info *models.Info, start time.Time) {
	rep.FileBytes = info.FileBytes
	rep.Weights = m.Config.NumWeights(m.SharedClassifier())
	rep.BitsPerWeight = float64(rep.FileBytes) * 8 / float64(rep.Weights)
	rep.ActGroup = m.ActGroup
	rep.Seconds = time.Since(start).Seconds()
}

// writeEvalJSON prints the report as --json does: one compact line.
func writeEvalJSON(w io.Writer, rep *evalReport) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func writeEvalText(w io.Writer, rep *evalReport, r *quant.Result) error {
	var b strings.Builder
	act := "float32"
	if rep.ActGroup > 0 {
		act = fmt.Sprintf("int8 in groups of %d", rep.ActGroup)
	}
	fmt.Fprintf(&b, "model            %s\n", rep.Model)
	fmt.Fprintf(&b, "file             %d bytes, %d weights, %.3f bits per weight; activations %s\n", rep.FileBytes, rep.Weights, rep.BitsPerWeight, act)
	if rep.Protocol == "docs" {
		fmt.Fprintf(&b, "protocol         per document, at most %d tokens: %d documents, %d scored tokens\n", rep.Ctx, rep.Segments, rep.ScoredTokens)
	} else {
		fmt.Fprintf(&b, "protocol         llama-perplexity, context %d: %d chunks, %d scored tokens\n", rep.Ctx, rep.Segments, rep.ScoredTokens)
	}
	fmt.Fprintf(&b, "PPL              %.4f (mean NLL %.6f)\n", r.PPL, r.NLL)
	if r.HasBase {
		fmt.Fprintf(&b, "base             %s: PPL %.4f (mean NLL %.6f)\n", rep.Base, r.BasePPL, r.BaseNLL)
		fmt.Fprintf(&b, "ln(PPL/PPL_base) %.6f\n", r.LnRatio)
		fmt.Fprintf(&b, "KLD              mean %.6f, 99%% %.6f, max %.6f\n", r.KLDMean, r.KLDP99, r.KLDMax)
		fmt.Fprintf(&b, "top-1 agreement  %.3f %%\n", 100*r.Top1)
		fmt.Fprintf(&b, "RMS Δp           %.3f %%\n", 100*r.RMSDp)
	}
	fmt.Fprintf(&b, "time             %.1f s\n", rep.Seconds)
	_, err := io.WriteString(w, b.String())
	return err
}
