package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"mote/core"
	"mote/engine"
	"mote/models"
)

// Sentence embeddings on the command line (docs/EMBED.md):
//
//	mote embed MODEL -i TEXT [--json]          one vector
//	mote embed MODEL --file LINES [--json]     one vector per line (- reads stdin)
//	mote embed MODEL --bench [--runs N] [-i TEXT]
//	mote similar MODEL A B [--json]
//	mote embed quant|eval ...                  (embed_quant.go)
//
// Common flags: --truncate (cut texts longer than the context instead of
// failing), --literal (special-token texts such as "[SEP]" are text),
// --threads N (1: one core; default: all cores, natively).

// cliFlags is a small long-flag parser: known flags with or without a
// value, positional arguments in between.
type cliFlags struct {
	pos  []string
	vals map[string]string
	set  map[string]bool
}

// parseFlags reads args; valued names the flags that take a value (also
// written --flag=value), boolean the others.
func parseFlags(args []string, valued, boolean []string) (*cliFlags, error) {
	f := &cliFlags{vals: map[string]string{}, set: map[string]bool{}}
	isIn := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			f.pos = append(f.pos, a)
			continue
		}
		name, val, inline := strings.Cut(a, "=")
		switch {
		case isIn(valued, name):
			if !inline {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("%w: flag %s needs a value", errUsage, name)
				}
				i++
				val = args[i]
			}
			f.vals[name] = val
		case isIn(boolean, name):
			if inline {
				return nil, fmt.Errorf("%w: flag %s takes no value", errUsage, name)
			}
		default:
			return nil, fmt.Errorf("%w: unknown flag %s", errUsage, name)
		}
		f.set[name] = true
	}
	return f, nil
}

func (f *cliFlags) int(name string, def, lo, hi int) (int, error) {
	v, ok := f.vals[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s %q is not a whole number in %d..%d", errUsage, name, v, lo, hi)
	}
	return n, nil
}

func (f *cliFlags) float(name string, def, lo, hi float64) (float64, error) {
	v, ok := f.vals[name]
	if !ok {
		return def, nil
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || !(x > lo && x <= hi) {
		return 0, fmt.Errorf("%w: %s %q is not a number in (%g, %g]", errUsage, name, v, lo, hi)
	}
	return x, nil
}

// encoderFlags are the flags of every command that runs an encoder.
var encoderFlags = []string{"--truncate", "--literal", "--json"}

// openEmbedder reads an encoder file and returns an Embedder holding it as
// "model", with the parallelism --threads asks for.
func openEmbedder(path string, f *cliFlags) (*engine.Embedder, engine.EmbedOptions, error) {
	o := engine.EmbedOptions{Truncate: f.set["--truncate"], Literal: f.set["--literal"]}
	threads, err := f.int("--threads", 0, 0, 1024)
	if err != nil {
		return nil, o, err
	}
	var par core.BertParallel
	if threads != 1 {
		par = newBertParallel()
	}
	m, info, err := models.OpenEncoder(path)
	if err != nil {
		return nil, o, err
	}
	e := engine.NewEmbedder(engine.EmbedLimits{MaxInputs: 1 << 16, MaxInputBytes: 1 << 24, MaxTotalTokens: 1 << 30}, par)
	if _, err := e.Add("model", m, info); err != nil {
		return nil, o, err
	}
	return e, o, nil
}

// appendVector writes v as a JSON array of float32 values in their
// shortest exact form (parsing them back gives the same bits).
func appendVector(b []byte, v []float32) []byte {
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	}
	return append(b, ']')
}

// cmdEmbed: mote embed MODEL (-i TEXT | --file LINES | --bench) [--json]
func cmdEmbed(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "quant" || args[0] == "eval") {
		if args[0] == "quant" {
			return cmdEmbedQuant(args[1:], stdout, stderr)
		}
		return cmdEmbedEval(args[1:], stdout, stderr)
	}
	f, err := parseFlags(args, []string{"-i", "--file", "--threads", "--runs"}, append([]string{"--bench"}, encoderFlags...))
	if err != nil {
		return err
	}
	if len(f.pos) != 1 {
		return fmt.Errorf("%w: embed needs one MODEL (a GGUF bert model or a mote encoder), got %d arguments", errUsage, len(f.pos))
	}
	modes := 0
	for _, k := range []string{"-i", "--file", "--bench"} {
		if f.set[k] {
			modes++
		}
	}
	if modes == 0 || modes > 1 && !(f.set["--bench"] && f.set["-i"] && !f.set["--file"]) {
		return fmt.Errorf("%w: embed takes -i TEXT, --file LINES or --bench", errUsage)
	}
	runs, err := f.int("--runs", 20, 1, 1<<20)
	if err != nil {
		return err
	}
	e, o, err := openEmbedder(f.pos[0], f)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	switch {
	case f.set["--bench"]:
		return benchEmbed(e, f, runs, w)
	case f.set["-i"]:
		return embedLines(e, o, f.set["--json"], []string{f.vals["-i"]}, w)
	}
	in, closeIn, err := openLines(f.vals["--file"])
	if err != nil {
		return err
	}
	defer closeIn()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<24)
	line := 0
	for sc.Scan() {
		line++
		if err := embedLines(e, o, f.set["--json"], []string{sc.Text()}, w); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	return sc.Err()
}

func openLines(path string) (io.Reader, func(), error) {
	if path == "-" {
		return os.Stdin, func() {}, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return fh, func() { fh.Close() }, nil
}

// embedLines prints one line per text: the vector's values separated by
// spaces, or with --json {"embedding": [...], "tokens": N}.
func embedLines(e *engine.Embedder, o engine.EmbedOptions, asJSON bool, texts []string, w io.Writer) error {
	r, err := e.Embed("model", texts, o)
	if err != nil {
		return err
	}
	var b []byte
	for i, v := range r.Vectors {
		b = b[:0]
		if asJSON {
			b = append(b, `{"embedding":`...)
			b = appendVector(b, v)
			b = append(b, `,"tokens":`...)
			b = strconv.AppendInt(b, int64(r.Tokens[i]), 10)
			b = append(b, "}\n"...)
		} else {
			for j, x := range v {
				if j > 0 {
					b = append(b, ' ')
				}
				b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
			}
			b = append(b, '\n')
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// benchEmbed measures embeddings per second with engine.BenchEmbed, for
// -i TEXT or for docs/EMBED.md's 12-token sentence and 128-token paragraph.
func benchEmbed(e *engine.Embedder, f *cliFlags, runs int, w io.Writer) error {
	texts := []string{engine.BenchSentence, engine.BenchParagraph}
	if t, ok := f.vals["-i"]; ok {
		texts = []string{t}
	}
	for _, t := range texts {
		b, err := e.BenchEmbed("model", t, runs)
		if err != nil {
			return err
		}
		if f.set["--json"] {
			fmt.Fprintf(w, `{"tokens":%d,"runs":%d,"seconds":%.6f,"per_second":%.4f,"ms_per_token":%.4f}`+"\n",
				b.Tokens, b.Runs, b.Elapsed.Seconds(), b.PerSecond, b.MsPerTok)
			continue
		}
		fmt.Fprintf(w, "%4d tokens: %9.2f embeddings/s, %7.3f ms/token (%d runs, %.3f s)\n",
			b.Tokens, b.PerSecond, b.MsPerTok, b.Runs, b.Elapsed.Seconds())
	}
	return nil
}

// cmdSimilar: mote similar MODEL A B [--json]
func cmdSimilar(args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, []string{"--threads"}, encoderFlags)
	if err != nil {
		return err
	}
	if len(f.pos) != 3 {
		return fmt.Errorf("%w: similar needs MODEL and two texts, got %d arguments", errUsage, len(f.pos))
	}
	e, o, err := openEmbedder(f.pos[0], f)
	if err != nil {
		return err
	}
	r, err := e.Embed("model", f.pos[1:], o)
	if err != nil {
		return err
	}
	c := core.Cosine(r.Vectors[0], r.Vectors[1])
	if math.IsNaN(c) {
		return errors.New("similarity is not a number")
	}
	if f.set["--json"] {
		_, err = fmt.Fprintf(stdout, `{"similarity":%s,"tokens":[%d,%d]}`+"\n", strconv.FormatFloat(c, 'f', 6, 64), r.Tokens[0], r.Tokens[1])
		return err
	}
	_, err = fmt.Fprintf(stdout, "%.6f\n", c)
	return err
}
