package cli

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"mote/engine"
	"mote/models"
)

// Text classification over embeddings (docs/EMBED.md):
//
//	mote classify MODEL --labels "sports,politics,technology" (-i TEXT | --file LINES)
//	                    [--temp T] [--template "This text is about {}."] [--json]
//	mote classify MODEL --head HEAD (-i TEXT | --file LINES) [--json]
//	mote classify train MODEL --data LABELED.tsv -o HEAD [--split 0.8] [--seed N]
//	                    [--max-tokens N] [--epochs N] [--l2 DECAY] [--json]
//
// LABELED.tsv has one example a line: the label, a tab, the text (in which
// \n, \t and \\ stand for a newline, a tab and a backslash).

func cmdClassify(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "train" {
		return cmdClassifyTrain(args[1:], stdout, stderr)
	}
	f, err := parseFlags(args, []string{"--labels", "--head", "-i", "--file", "--temp", "--template", "--threads"}, encoderFlags)
	if err != nil {
		return err
	}
	if len(f.pos) != 1 {
		return fmt.Errorf("%w: classify needs one MODEL, got %d arguments", errUsage, len(f.pos))
	}
	if f.set["--labels"] == f.set["--head"] {
		return fmt.Errorf("%w: classify takes --labels (zero-shot) or --head HEAD (trained), one of them", errUsage)
	}
	if f.set["-i"] == f.set["--file"] {
		return fmt.Errorf("%w: classify takes -i TEXT or --file LINES", errUsage)
	}
	temp, err := f.float("--temp", engine.DefaultZeroShotTemp, 0, 100)
	if err != nil {
		return err
	}
	var texts []string
	if t, ok := f.vals["-i"]; ok {
		texts = []string{t}
	} else {
		in, closeIn, err := openLines(f.vals["--file"])
		if err != nil {
			return err
		}
		defer closeIn()
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 1<<24)
		for sc.Scan() {
			texts = append(texts, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if len(texts) == 0 {
			return fmt.Errorf("%s: no lines", f.vals["--file"])
		}
	}
	e, o, err := openEmbedder(f.pos[0], f)
	if err != nil {
		return err
	}
	var labels []string
	var probs [][]float32
	if l, ok := f.vals["--labels"]; ok {
		for _, s := range strings.Split(l, ",") {
			labels = append(labels, strings.TrimSpace(s))
		}
		template, ok := f.vals["--template"]
		if !ok {
			template = engine.DefaultTemplate
		}
		probs, err = e.ZeroShot("model", texts, labels, template, float32(temp), o)
	} else {
		if f.set["--template"] || f.set["--temp"] {
			return fmt.Errorf("%w: --template and --temp are for zero-shot (--labels)", errUsage)
		}
		var hf *models.HeadFile
		if hf, err = models.OpenHead(f.vals["--head"]); err != nil {
			return err
		}
		labels = hf.Head.Labels
		probs, err = e.Classify("model", hf.Head, texts, o)
	}
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for _, p := range probs {
		order := make([]int, len(labels))
		for k := range order {
			order[k] = k
		}
		sort.SliceStable(order, func(a, b int) bool { return p[order[a]] > p[order[b]] })
		if f.set["--json"] {
			ps := make([]float64, len(p))
			for k, v := range p {
				ps[k], _ = strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', 6, 32), 64)
			}
			b, _ := json.Marshal(map[string]any{"label": labels[order[0]], "labels": labels, "probs": ps})
			w.Write(append(b, '\n'))
			continue
		}
		for i, k := range order {
			if i > 0 {
				w.WriteByte(' ')
			}
			fmt.Fprintf(w, "%s:%.4f", labels[k], p[k])
		}
		w.WriteByte('\n')
	}
	return nil
}

// cmdClassifyTrain: mote classify train MODEL --data LABELED.tsv -o HEAD
func cmdClassifyTrain(args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, []string{"--data", "-o", "--split", "--seed", "--max-tokens", "--epochs", "--l2", "--threads"}, []string{"--json"})
	if err != nil {
		return err
	}
	if len(f.pos) != 1 || !f.set["--data"] || !f.set["-o"] {
		return fmt.Errorf("%w: classify train needs MODEL, --data LABELED.tsv and -o HEAD", errUsage)
	}
	var c engine.TrainConfig
	if c.Split, err = f.float("--split", 0.8, 0, 0.99); err != nil {
		return err
	}
	seed, err := f.int("--seed", 1, 1, 1<<30)
	if err != nil {
		return err
	}
	c.Seed = uint64(seed)
	if c.MaxTokens, err = f.int("--max-tokens", 0, 3, 1<<20); err != nil {
		return err
	}
	if c.Epochs, err = f.int("--epochs", 0, 1, 100000); err != nil {
		return err
	}
	if c.L2, err = f.float("--l2", 0, 0, 10); err != nil {
		return err
	}
	data, err := readLabeled(f.vals["--data"])
	if err != nil {
		return err
	}
	model := f.pos[0]
	e, _, err := openEmbedder(model, f)
	if err != nil {
		return err
	}
	last := time.Now()
	c.Progress = func(done, total int) {
		if time.Since(last) > 2*time.Second || done == total {
			last = time.Now()
			fmt.Fprintf(stderr, "\rembedding %d/%d", done, total)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}
	head, r, err := e.TrainHead("model", data, c)
	if err != nil {
		return err
	}
	sum, err := encoderSHA256(model)
	if err != nil {
		return err
	}
	maxTok := c.MaxTokens
	if maxTok == 0 {
		maxTok = e.Models()[0].MaxTokens
	}
	notes := fmt.Sprintf("encoder: %s\nencoder_sha256: %s\ndata: %s (%d examples)\nsplit: %d train, %d held out (seed %d)\n"+
		"max_tokens: %d\nweight_decay: %g\nheld_out_accuracy: %.4f\nbag_of_words_same_tokens: %.4f\nbag_of_words_whole_texts: %.4f\nmajority: %.4f\n",
		filepath.Base(model), sum, filepath.Base(f.vals["--data"]), len(data), r.Train, r.Test, c.Seed,
		maxTok, r.L2, r.Accuracy, r.BagOfWords, r.BagOfWordsAll, r.Majority)
	out := f.vals["-o"]
	if err := writeFileAtomic(out, func(w io.Writer) error {
		return models.WriteHead(w, head, notes, models.WriteOptions{})
	}); err != nil {
		return err
	}
	st, _ := os.Stat(out)
	if f.set["--json"] {
		b, _ := json.Marshal(map[string]any{"labels": r.Labels, "train": r.Train, "test": r.Test, "accuracy": r.Accuracy,
			"bag_of_words": r.BagOfWords, "bag_of_words_whole": r.BagOfWordsAll, "majority": r.Majority,
			"confusion": r.Confusion, "truncated": r.Truncated, "l2": r.L2, "bag_of_words_l2": r.BagOfWordsL2, "max_tokens": maxTok, "embed_seconds": r.EmbedTime.Seconds(),
			"head": out, "head_bytes": st.Size()})
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	fmt.Fprintf(w, "%d examples, %d labels (%s): %d trained on, %d held out (seed %d); %d texts cut to %d tokens\n",
		len(data), len(r.Labels), strings.Join(r.Labels, ", "), r.Train, r.Test, c.Seed, r.Truncated, maxTok)
	fmt.Fprintf(w, "held-out accuracy:\n")
	fmt.Fprintf(w, "  embedding head                    %6.2f %%   (weight decay %g)\n", 100*r.Accuracy, r.L2)
	fmt.Fprintf(w, "  bag of words, the same tokens     %6.2f %%   (weight decay %g)\n", 100*r.BagOfWords, r.BagOfWordsL2)
	fmt.Fprintf(w, "  bag of words, whole texts         %6.2f %%\n", 100*r.BagOfWordsAll)
	fmt.Fprintf(w, "  majority label                    %6.2f %%\n", 100*r.Majority)
	fmt.Fprintf(w, "confusion of the head (rows: true label, columns: predicted):\n")
	for i, row := range r.Confusion {
		fmt.Fprintf(w, "  %-12s", r.Labels[i])
		for _, n := range row {
			fmt.Fprintf(w, " %6d", n)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "embedding took %.1f s; wrote %s (%d bytes)\n", r.EmbedTime.Seconds(), out, st.Size())
	return nil
}

// readLabeled reads LABEL<TAB>TEXT lines (empty lines are skipped).
func readLabeled(path string) ([]engine.LabeledText, error) {
	in, closeIn, err := openLines(path)
	if err != nil {
		return nil, err
	}
	defer closeIn()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<24)
	var out []engine.LabeledText
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if strings.TrimSpace(s) == "" {
			continue
		}
		label, text, ok := strings.Cut(s, "\t")
		label = strings.TrimSpace(label)
		if !ok || label == "" {
			return nil, fmt.Errorf("%s:%d: want LABEL<TAB>TEXT", path, line)
		}
		out = append(out, engine.LabeledText{Label: label, Text: unescapeTSV(text)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no examples", path)
	}
	return out, nil
}

// unescapeTSV decodes \n, \t and \\ (other backslashes stay).
func unescapeTSV(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case 't':
				b.WriteByte('\t')
				i++
				continue
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func encoderSHA256(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
