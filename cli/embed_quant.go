package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"mote/core"
	"mote/models"
	"mote/quant"
)

// Encoder quantization and its evaluation (docs/EMBED.md, Quantization):
//
//	mote embed quant ENCODER -o OUT (--type SPEC[,emb=SPEC,NAME=SPEC...] | --type gguf)
//	                 [--act N] [--compress none|zstd|tensor]
//	mote embed eval ENCODER... --base BASE --file LINES [--lines N] [--max-tokens N] [--act N] [--json]
//
// --type gguf writes the encoder exactly as it is (GGUF's blocks repacked
// into the container's qk form); a spec (quant.ParseSpec, e.g.
// 4b/nl/g32/f16) quantizes the dequantized fp32 weights. eval compares
// ENCODER's embeddings with those of BASE dequantized to fp32 with float
// activations (the unquantized model) by cosine similarity.

func cmdEmbedQuant(args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, []string{"-o", "--type", "--act", "--compress"}, nil)
	if err != nil {
		return err
	}
	if len(f.pos) != 1 || !f.set["-o"] || !f.set["--type"] {
		return fmt.Errorf("%w: embed quant needs ENCODER, -o OUT and --type SPEC|gguf", errUsage)
	}
	act, err := f.int("--act", 32, 0, 1<<16)
	if err != nil {
		return err
	}
	opts := models.WriteOptions{Compression: models.CompressZstd}
	if c, ok := f.vals["--compress"]; ok {
		if opts.Compression, err = models.ParseCompression(c); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	m, _, err := models.OpenEncoder(f.pos[0])
	if err != nil {
		return err
	}
	start := time.Now()
	out := m
	if t := f.vals["--type"]; t == "gguf" {
		if f.set["--act"] {
			m.ActGroup = act
		}
		out, opts.Packed = quant.PackEncoder(m)
	} else {
		p, err := quant.ParseEncoderPolicy(t, act)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		q, err := quant.QuantizeEncoder(m, p)
		if err != nil {
			return err
		}
		out, opts.Packed = q.Model, q.Mats
	}
	if err := out.Validate(); err != nil {
		return err
	}
	path := f.vals["-o"]
	if err := writeFileAtomic(path, func(w io.Writer) error { return models.WriteEncoder(w, out, opts) }); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "mote: %s -> %s (%s, %d bytes) in %v\n", f.pos[0], path, f.vals["--type"], st.Size(), time.Since(start).Round(time.Millisecond))
	return nil
}

func cmdEmbedEval(args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, []string{"--base", "--file", "--lines", "--max-tokens", "--act"}, []string{"--json"})
	if err != nil {
		return err
	}
	if len(f.pos) == 0 || !f.set["--base"] || !f.set["--file"] {
		return fmt.Errorf("%w: embed eval needs ENCODER..., --base BASE and --file LINES", errUsage)
	}
	nLines, err := f.int("--lines", 256, 1, 1<<20)
	if err != nil {
		return err
	}
	maxTok, err := f.int("--max-tokens", 128, 3, 1<<14)
	if err != nil {
		return err
	}
	act, err := f.int("--act", -1, -1, 1<<16)
	if err != nil {
		return err
	}
	texts, err := evalLines(f.vals["--file"], nLines)
	if err != nil {
		return err
	}
	base, _, err := models.OpenEncoder(f.vals["--base"])
	if err != nil {
		return err
	}
	ref, ntok := quant.EmbedTexts(quant.DequantizeEncoder(base), texts, maxTok)
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if !f.set["--json"] {
		fmt.Fprintf(w, "cosine to %s dequantized to fp32 (float activations), %d texts of %s, %d tokens:\n",
			f.vals["--base"], len(texts), f.vals["--file"], ntok)
		fmt.Fprintf(w, "%-40s %12s %-8s %-9s %9s %9s %9s\n", "encoder", "bytes", "weights", "act", "mean", "p5", "min")
	}
	for _, path := range f.pos {
		m, _, err := models.OpenEncoder(path)
		if err != nil {
			return err
		}
		if act >= 0 {
			m.ActGroup = act
			if err := m.Validate(); err != nil {
				return err
			}
		}
		got, _ := quant.EmbedTexts(m, texts, maxTok)
		r := quant.CompareEmbeddings(ref, got)
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if f.set["--json"] {
			fmt.Fprintf(w, `{"encoder":%q,"texts":%d,"tokens":%d,"mean_cosine":%.6f,"p05_cosine":%.6f,"min_cosine":%.6f,"bytes":%d,"weights":%q,"act_group":%d}`+"\n",
				path, r.Texts, ntok, r.MeanCosine, r.P05Cosine, r.MinCosine, st.Size(), dtypeOf(m), m.ActGroup)
			continue
		}
		fmt.Fprintf(w, "%-40s %12d %-8s %-9s %9.6f %9.6f %9.6f\n", path, st.Size(), dtypeOf(m), actName(m.ActGroup), r.MeanCosine, r.P05Cosine, r.MinCosine)
	}
	return nil
}

// evalLines reads up to n non-empty lines, skipping TinyStories' document
// separators.
func evalLines(path string, n int) ([]string, error) {
	in, closeIn, err := openLines(path)
	if err != nil {
		return nil, err
	}
	defer closeIn()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<24)
	var out []string
	for sc.Scan() && len(out) < n {
		l := strings.TrimSpace(sc.Text())
		if l != "" && l != "<|endoftext|>" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no lines", path)
	}
	return out, sc.Err()
}

func dtypeOf(m *core.Bert) string {
	kinds := map[string]bool{}
	for _, nl := range m.Mats() {
		kinds[nl.Lin.W.Type.String()] = true
	}
	var s []string
	for _, k := range []string{"f32", "q8", "q4"} {
		if kinds[k] {
			s = append(s, k)
		}
	}
	return strings.Join(s, "+")
}

func actName(g int) string {
	if g == 0 {
		return "f32"
	}
	return fmt.Sprintf("int8/%d", g)
}
