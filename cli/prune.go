package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"mote/core"
	"mote/models"
	"mote/quant"
)

// mote prune IN -o OUT [--ffn F] [--heads F] [--layers N] [--vocab TEXT]
//     [--sparsity F] [--nm N:M] [--method magnitude|wanda] [--calib TEXT]
//     [--seed N] [-z TOKENIZER] [--compress none|zstd|tensor] [--no-refit]
//
// F is a fraction removed, N a number of layers removed. --calib TEXT
// measures importance on that text; without it the model writes its own
// calibration text (--seed). --no-refit skips the least-squares refit of
// w2/wo after FFN or head pruning. See docs/PRUNE.md.

type pruneOpts struct {
	in, out, tokenizer string
	vocab, calib       string
	compress           string
	seed               uint64
	o                  quant.PruneOptions
}

// maxTextBytes bounds the --vocab and --calib files read into memory.
const maxTextBytes = 1 << 30

func parsePrune(args []string) (pruneOpts, error) {
	p := pruneOpts{seed: 1, compress: "none"}
	usage := func(format string, a ...any) error {
		return fmt.Errorf("%w: prune: "+format, append([]any{errUsage}, a...)...)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			if p.in != "" {
				return p, usage("one input model, got %q and %q", p.in, a)
			}
			p.in = a
			continue
		}
		if a == "--no-refit" {
			p.o.NoRefit = true
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if !hasVal {
			if i+1 >= len(args) {
				return p, usage("%s needs a value", name)
			}
			i++
			val = args[i]
		}
		frac := func() (float64, error) {
			f, err := strconv.ParseFloat(val, 64)
			if err != nil || !(f >= 0 && f < 1) {
				return 0, usage("%s %q: want a fraction in [0, 1)", name, val)
			}
			return f, nil
		}
		var err error
		switch name {
		case "-o", "--out":
			p.out = val
		case "-z", "--tokenizer":
			p.tokenizer = val
		case "--ffn":
			p.o.FFN, err = frac()
		case "--heads":
			p.o.Heads, err = frac()
		case "--sparsity":
			p.o.Sparsity, err = frac()
		case "--layers":
			p.o.Layers, err = strconv.Atoi(val)
			if err != nil || p.o.Layers < 0 {
				err = usage("--layers %q: want a number of layers", val)
			}
		case "--nm":
			ns, ms, ok := strings.Cut(val, ":")
			n, err1 := strconv.Atoi(ns)
			m, err2 := strconv.Atoi(ms)
			if !ok || err1 != nil || err2 != nil {
				err = usage("--nm %q: want N:M, e.g. 2:4", val)
			}
			p.o.N, p.o.M = n, m
		case "--method":
			switch val {
			case "magnitude":
				p.o.Method = quant.Magnitude
			case "wanda":
				p.o.Method = quant.Wanda
			default:
				err = usage("--method %q: want magnitude or wanda", val)
			}
		case "--vocab":
			p.vocab = val
		case "--calib":
			p.calib = val
		case "--seed":
			p.seed, err = strconv.ParseUint(val, 10, 64)
			if err != nil {
				err = usage("--seed %q: want a non-negative integer", val)
			}
		case "--compress":
			p.compress = val
		default:
			return p, usage("unknown flag %s", name)
		}
		if err != nil {
			return p, err
		}
	}
	switch {
	case p.in == "":
		return p, usage("no input model")
	case p.out == "":
		return p, usage("no output: give -o OUT")
	case p.o.FFN == 0 && p.o.Heads == 0 && p.o.Layers == 0 && p.vocab == "" && p.o.Sparsity == 0 && p.o.M == 0:
		return p, usage("nothing to prune: give --ffn, --heads, --layers, --vocab, --sparsity or --nm")
	}
	return p, nil
}

// readText reads a --vocab or --calib file.
func readText(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTextBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxTextBytes {
		return "", fmt.Errorf("%s: larger than %d bytes", path, maxTextBytes)
	}
	return string(b), nil
}

func cmdPrune(args []string, stdout, stderr io.Writer) error {
	p, err := parsePrune(args)
	if err != nil {
		return err
	}
	comp, err := models.ParseCompression(p.compress)
	if err != nil {
		return fmt.Errorf("%w: prune: --compress: %v", errUsage, err)
	}
	m, _, err := models.Open(p.in, p.tokenizer)
	if err != nil {
		return err
	}
	needTok := p.vocab != "" || p.calib != ""
	if needTok && m.Tokenizer == nil {
		return fmt.Errorf("%s carries no tokenizer, which --vocab and --calib need; give one with -z", p.in)
	}
	o := p.o
	o.CalibSeed = p.seed
	calibFrom := fmt.Sprintf("self-generated at temperature 1, seed %d", p.seed)
	if p.calib != "" {
		text, err := readText(p.calib)
		if err != nil {
			return err
		}
		if o.Calib, err = quant.PruneTextCalib(m.Tokenizer, text, m.Config.SeqLen, 0); err != nil {
			return err
		}
		calibFrom = p.calib
	}
	if p.vocab != "" {
		text, err := readText(p.vocab)
		if err != nil {
			return err
		}
		o.VocabText = []string{text}
	}
	if err := o.Check(&m.Config); err != nil {
		return err
	}
	if o.FFN > 0 || o.Heads > 0 || o.Layers > 0 || o.Method == quant.Wanda && (o.Sparsity > 0 || o.M > 0) {
		fmt.Fprintf(stderr, "measuring activations (calibration: %s)...\n", calibFrom)
	}
	out, r, err := quant.Prune(m, o)
	if err != nil {
		return err
	}
	n, err := writeModelFile(p.out, out, models.WriteOptions{Compression: comp})
	if err != nil {
		return err
	}
	printPruneReport(stdout, p, r, calibFrom, n)
	return nil
}

// writeModelFile writes a container through a temporary file in the same
// folder and renames it into place, so OUT is never half written (and IN
// may be OUT). It returns the file's size.
func writeModelFile(path string, m *core.Model, wo models.WriteOptions) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	bw := bufio.NewWriterSize(tmp, 1<<20)
	err = models.WriteContainer(bw, m, wo)
	if err == nil {
		err = bw.Flush()
	}
	var size int64
	if err == nil {
		var st os.FileInfo
		if st, err = tmp.Stat(); err == nil {
			size = st.Size()
		}
	}
	if err == nil {
		err = tmp.Chmod(0o644) // CreateTemp makes it private; a model file is not
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return size, nil
}

func printPruneReport(w io.Writer, p pruneOpts, r *quant.PruneReport, calibFrom string, size int64) {
	b, a := r.Before, r.After
	fmt.Fprintf(w, "pruned %s -> %s (%d bytes, fp32)\n", p.in, p.out, size)
	fmt.Fprintf(w, "  layers %d -> %d", b.NLayers, a.NLayers)
	if len(r.LayersRemoved) > 0 {
		fmt.Fprintf(w, " (removed %v; block influence", r.LayersRemoved)
		for _, v := range r.LayerInfluence {
			fmt.Fprintf(w, " %.4f", v)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, "\n  heads %d/%d kv -> %d/%d kv, %d wide (query width %d -> %d)", b.NHeads, b.NKVHeads, a.NHeads, a.NKVHeads,
		a.HeadSize(), b.QDim(), a.QDim())
	if len(r.KVHeadsKept) > 0 {
		fmt.Fprintf(w, "; kv heads kept per layer %v", r.KVHeadsKept)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  ffn hidden %d -> %d\n", b.HiddenDim, a.HiddenDim)
	fmt.Fprintf(w, "  vocab %d -> %d\n", b.VocabSize, a.VocabSize)
	if r.Sparsed > 0 {
		fmt.Fprintf(w, "  sparsity: %d of %d layer weights zeroed (%.2f %%, %s); the file shrinks only when compressed\n",
			r.Zeroed, r.Sparsed, 100*float64(r.Zeroed)/float64(r.Sparsed), p.o.Method)
	}
	fmt.Fprintf(w, "  parameters %d -> %d (%.1f %%)\n", r.ParamsBefore, r.ParamsAfter, 100*float64(r.ParamsAfter)/float64(r.ParamsBefore))
	if r.CalibTokens > 0 {
		fmt.Fprintf(w, "  calibration: %d positions, %s\n", r.CalibTokens, calibFrom)
	}
}
