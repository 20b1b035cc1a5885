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
)

// defaultCompression for `mote convert`: whole-payload zstd. Measured on
// stories260K (FORMAT.md, Sizes): 7 % smaller than none for fp32, 11 % for
// Q8; per-tensor frames are within 0.1 % of it either way, and only the
// whole-payload stream also compresses the tokenizer and the directory.
const defaultCompression = models.CompressZstd

// cmdConvert: mote convert IN OUT [--compress none|zstd|tensor] [--level N]
// [--f16-scales] [-z TOKENIZER]
func cmdConvert(args []string, stdout, stderr io.Writer) error {
	opts := models.WriteOptions{Compression: defaultCompression}
	var tok string
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, inline := strings.Cut(a, "=")
		value := func() (string, error) {
			if inline {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%w: flag %s needs a value", errUsage, name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--compress", "-c":
			var v string
			if v, err = value(); err == nil {
				if opts.Compression, err = models.ParseCompression(v); err != nil {
					err = fmt.Errorf("%w: %v", errUsage, err)
				}
			}
		case "--level":
			var v string
			if v, err = value(); err == nil {
				if opts.Level, err = strconv.Atoi(v); err != nil || opts.Level < 1 || opts.Level > 22 {
					err = fmt.Errorf("%w: --level %q is not a zstd level 1..22", errUsage, v)
				}
			}
		case "--f16-scales":
			if inline {
				err = fmt.Errorf("%w: --f16-scales takes no value", errUsage)
			}
			opts.F16Scales = true
		case "-z", "--tokenizer":
			tok, err = value()
		default:
			err = fmt.Errorf("%w: unknown flag %s", errUsage, name)
		}
		if err != nil {
			return err
		}
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: convert needs IN and OUT, got %d file arguments", errUsage, len(pos))
	}
	in, out := pos[0], pos[1]
	start := time.Now()
	m, info, err := models.Open(in, tok)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(out, func(w io.Writer) error { return models.WriteContainer(w, m, opts) }); err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	tokNote := "no tokenizer: give one with -z when running it"
	if m.Tokenizer != nil {
		tokNote = fmt.Sprintf("%d-token tokenizer", len(m.Tokenizer.Vocab))
	}
	fmt.Fprintf(stderr, "mote: %s (%s, %d bytes) -> %s (mote v%d, %s, %d bytes, %.1f%%, %s) in %v\n",
		in, formatName(info), info.FileBytes, out, models.ContainerVersion, opts.Compression, st.Size(),
		100*float64(st.Size())/float64(info.FileBytes), tokNote, time.Since(start).Round(time.Millisecond))
	return nil
}

// writeFileAtomic writes path.tmp and renames it to path, so that path is
// either the old file or the complete new one.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func formatName(info *models.Info) string {
	if info.Version > 0 {
		return fmt.Sprintf("%s v%d", info.Format, info.Version)
	}
	return string(info.Format)
}

// cmdInfo: mote info [MODEL] [-z TOKENIZER]. It reads the whole model, so
// "checksums verified" means every checksum of the file was checked.
func cmdInfo(args []string, stdout, stderr io.Writer) error {
	path, rest, err := modelArg(args)
	if err != nil {
		return err
	}
	var tok string
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case "-z", "--tokenizer":
			if i+1 >= len(rest) {
				return fmt.Errorf("%w: flag %s needs a value", errUsage, rest[i])
			}
			i++
			tok = rest[i]
		default:
			return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[i])
		}
	}
	m, info, err := models.Open(path, tok)
	if err != nil {
		return err
	}
	var ci *models.ContainerInfo
	if info.Format == models.FormatMote {
		if ci, err = readContainerInfo(path); err != nil {
			return err
		}
	}
	c := &m.Config
	shared := m.SharedClassifier()
	weights := c.NumWeights(shared)
	var b strings.Builder
	line := func(key, format string, a ...any) { fmt.Fprintf(&b, "%-12s %s\n", key, fmt.Sprintf(format, a...)) }
	line("file", "%s", path)
	line("format", "%s", formatName(info))
	line("compression", "%s", info.Compress)
	line("checksums", "%s", info.Checksums)
	line("file size", "%d bytes", info.FileBytes)
	line("config", "dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d, norm_eps %g, rope_theta %g",
		c.Dim, c.HiddenDim, c.NLayers, c.NHeads, c.NKVHeads, c.VocabSize, c.SeqLen, c.NormEps, c.RopeTheta)
	if c.HeadDim != 0 {
		line("head_dim", "%d (query width %d; heads not dim/n_heads wide, e.g. after mote prune --heads)", c.HeadDim, c.QDim())
	}
	if shared {
		line("classifier", "shared with the token embedding")
	} else {
		line("classifier", "separate")
	}
	if m.ActGroup > 0 {
		line("activations", "int8 in groups of %d", m.ActGroup)
	} else {
		line("activations", "float32")
	}
	line("weights", "%d", weights)
	line("bits/weight", "%.3f", float64(info.FileBytes)*8/float64(weights))
	line("tensors", "%s", tensorCounts(m, ci))
	switch {
	case m.Tokenizer == nil:
		line("tokenizer", "none (give one with -z)")
	case ci != nil && ci.Tokens > 0 && tok == "":
		var n int64
		for _, s := range ci.Sections {
			if s.Name == "tokenizer" {
				n = s.Bytes
			}
		}
		line("tokenizer", "%d tokens, bos %d, eos %d (%d bytes in the file)", ci.Tokens, m.Tokenizer.BOS, m.Tokenizer.EOS, n)
	default:
		line("tokenizer", "%d tokens, bos %d, eos %d", len(m.Tokenizer.Vocab), m.Tokenizer.BOS, m.Tokenizer.EOS)
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}

// readContainerInfo reads a container's header sections (a second pass
// over the file, stopping before the tensor data).
func readContainerInfo(path string) (*models.ContainerInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return models.ReadContainerInfo(path, f, st.Size())
}

// tensorCounts counts tensors per stored type: from the container's
// directory when there is one, else from the model in memory.
func tensorCounts(m *core.Model, ci *models.ContainerInfo) string {
	counts := map[string]int{}
	total := 0
	if ci != nil {
		for _, t := range ci.Tensors {
			key := t.Type.String()
			switch {
			case t.Type == models.TypeQK:
				book := "uniform"
				if t.Codebook {
					book = "codebook"
				}
				key = fmt.Sprintf("%s (%d-bit %s, groups of %d, %s scales)", t.Type, t.Bits, book, t.GroupSize, t.Scale)
			case t.GroupSize > 0:
				key = fmt.Sprintf("%s (groups of %d, %s scales)", t.Type, t.GroupSize, t.Scale)
			}
			counts[key]++
			total++
		}
	} else {
		w := &m.Weights
		mats := []*core.Mat{&w.TokenEmbedding}
		if !m.SharedClassifier() {
			mats = append(mats, w.Wcls)
		}
		for _, set := range [][]core.Mat{w.Wq, w.Wk, w.Wv, w.Wo, w.W1, w.W2, w.W3} {
			for i := range set {
				mats = append(mats, &set[i])
			}
		}
		for _, mat := range mats {
			key := mat.Type.String()
			if mat.Type != core.F32 {
				key = fmt.Sprintf("%s (groups of %d)", mat.Type, mat.GroupSize)
			}
			counts[key]++
		}
		counts[core.F32.String()] += 2*m.Config.NLayers + 1 // norms
		total = len(mats) + 2*m.Config.NLayers + 1
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
	}
	return fmt.Sprintf("%d: %s", total, strings.Join(parts, ", "))
}
