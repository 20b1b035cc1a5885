// Command qchart measures mote's quantization recipes on stories260K and
// draws the size/quality chart of docs/QUANT.md: every recipe is run with
// the mote command itself (mote prune, mote quant, as a user would), the
// files are scored with the llama-perplexity protocol at context 256 against
// the fp32 model in one pass, and the results are written as a markdown
// table, a JSON file and an SVG chart (file bytes against mean KLD, with
// llama.cpp's points for the same model beside mote's).
//
//	go run ./quant/cmd/qchart [-work DIR] [-out DIR] [-chunks N] [-only a,b]
//
// From the repository root; it reads ../shared/models. A full run scores
// 1,578 chunks per recipe (about 400,000 forward passes each).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"mote/cli"
	"mote/core"
	"mote/models"
	"mote/quant"
)

// recipe is one point of mote's curve: optional pruning, then quantization.
type recipe struct {
	Name  string   `json:"name"`
	Prune []string `json:"prune,omitempty"` // mote prune flags
	Quant []string `json:"quant"`           // mote quant flags (--type ...)
	About string   `json:"about"`
	// VocabDocs prunes the vocabulary to what the first VocabDocs documents
	// of the evaluation text use (-1: the whole text), before any other
	// pruning flag; the point is scored on that same text (see vocabPoint).
	VocabDocs int `json:"vocab_docs,omitempty"`
	// Extra recipes (ablations, presets between curve points) run only when
	// named in -only.
	Extra bool `json:"-"`
}

var recipes = []recipe{
	{Name: "q8", Quant: []string{"--type", "q8"}},
	{Name: "q8f", Quant: []string{"--type", "q8f"}},
	{Name: "q5", Quant: []string{"--type", "q5"}},
	{Name: "q4", Quant: []string{"--type", "q4"}},
	{Name: "q4nl", Quant: []string{"--type", "q4nl"}},
	{Name: "q3m", Quant: []string{"--type", "q3m"}},
	{Name: "q3", Quant: []string{"--type", "q3"}},
	{Name: "q2m", Quant: []string{"--type", "q2m"}},
	{Name: "q2", Quant: []string{"--type", "q2"}},
	{Name: "ffn25+q4", Prune: []string{"--ffn", "0.25"}, Quant: []string{"--type", "q4"},
		About: "mote prune --ffn 0.25 (43 of 172 neurons per layer), then q4"},
	{Name: "ffn50+q4", Prune: []string{"--ffn", "0.5"}, Quant: []string{"--type", "q4"},
		About: "mote prune --ffn 0.5 (86 of 172 neurons per layer), then q4"},
	{Name: "heads25+q4", Prune: []string{"--heads", "0.25"}, Quant: []string{"--type", "q4"},
		About: "mote prune --heads 0.25 (1 of 4 key/value groups, 2 of 8 query heads per layer), then q4"},
	{Name: "heads50+q4", Prune: []string{"--heads", "0.5"}, Quant: []string{"--type", "q4"},
		About: "mote prune --heads 0.5 (2 of 4 key/value groups, 4 of 8 query heads per layer), then q4"},
	{Name: "layers1+q4", Prune: []string{"--layers", "1"}, Quant: []string{"--type", "q4"},
		About: "mote prune --layers 1 (1 of 5 blocks), then q4"},
	{Name: "layers2+q4", Prune: []string{"--layers", "2"}, Quant: []string{"--type", "q4"},
		About: "mote prune --layers 2 (2 of 5 blocks), then q4"},
	{Name: "vocab100+q4", VocabDocs: 100, Quant: []string{"--type", "q4"},
		About: "mote prune --vocab (the first 100 stories of the evaluation text), then q4; scored on those 100 stories"},
	{Name: "vocab300+q4", VocabDocs: 300, Quant: []string{"--type", "q4"},
		About: "mote prune --vocab (the first 300 stories of the evaluation text), then q4; scored on those 300 stories"},

	{Name: "q6", Quant: []string{"--type", "q6"}, Extra: true},
	{Name: "q4e8", Quant: []string{"--type", "q4e8"}, Extra: true},
	{Name: "q4g", Quant: []string{"--type", "q4g"}, Extra: true},
	{Name: "4b-learned", Quant: []string{"--type", "4b/learned/g16/log8+gptq"}, Extra: true,
		About: "ablation: every matrix as q4's default (4-bit fitted codebook, groups of 16, log8, error feedback), no mixing"},
	{Name: "4b-nl", Quant: []string{"--type", "4b/nl/g16/log8+gptq"}, Extra: true,
		About: "ablation: same with IQ4_NL's fixed levels instead of fitted codebooks"},
	{Name: "ffn25+q3m", Prune: []string{"--ffn", "0.25"}, Quant: []string{"--type", "q3m"}, Extra: true,
		About: "mote prune --ffn 0.25, then q3m"},
	{Name: "heads25+q3m", Prune: []string{"--heads", "0.25"}, Quant: []string{"--type", "q3m"}, Extra: true,
		About: "mote prune --heads 0.25, then q3m"},
}

// anchor is one of llama.cpp's points for stories260K (the figures:
// llama-quantize, llama-perplexity --kl-divergence at context 256).
type anchor struct {
	Name  string  `json:"name"`
	Bytes int64   `json:"file_bytes"`
	KLD   float64 `json:"kld_mean"`
	Top1  float64 `json:"top1"`
}

var anchors = []anchor{
	{"Q8_0", 379168, 0.00130, 0.9789},
	{"Q5_K_M", 316448, 0.0287, 0.9119},
	{"Q4_K_S", 303072, 0.0366, 0.9019},
	{"Q3_K_M", 281120, 0.0965, 0.8433},
	{"IQ4_NL", 277024, 0.1105, 0.8315},
	{"Q4_0", 277024, 0.1424, 0.8077},
}

var pngPath string

// point is a measured recipe.
type point struct {
	recipe
	File        string  `json:"file"`
	Bytes       int64   `json:"file_bytes"`
	BitsPerW    float64 `json:"bits_per_weight"`
	ActGroup    int     `json:"act_group"`
	PPL         float64 `json:"ppl"`
	LnRatio     float64 `json:"ln_ppl_ratio"`
	KLD         float64 `json:"kld_mean"`
	KLDP99      float64 `json:"kld_p99"`
	KLDMax      float64 `json:"kld_max"`
	Top1        float64 `json:"top1"`
	RMSDp       float64 `json:"rms_dp"`
	Best        bool    `json:"best_at_its_size"`
	QuantStderr string  `json:"-"`

	// Vocabulary-pruned points only: scored by quant.CompareVocabPruned on
	// the text the vocabulary was pruned to. KLD and top-1 are then over the
	// kept tokens (the base renormalised on them); LostMass is the base's
	// mean probability on the removed ones. 99% KLD and RMS Δp are not
	// measured for them.
	VocabKept  int      `json:"vocab_kept,omitempty"`
	LostMass   *float64 `json:"lost_mass,omitempty"`
	EvalChunks int      `json:"eval_chunks,omitempty"`
	EvalScored int      `json:"eval_scored,omitempty"`
}

// vocab reports whether p is a vocabulary-pruned point.
func (p *point) vocab() bool { return p.VocabDocs != 0 }

func main() {
	shared := flag.String("shared", filepath.Join("..", "shared", "models"), "folder of stories260K.bin, tok512.bin and the TinyStories text")
	work := flag.String("work", filepath.Join("dist", "quant"), "folder for the quantized files")
	out := flag.String("out", "docs", "folder for quant-results.md, quant-results.json and quant-chart.svg")
	chunks := flag.Int("chunks", 0, "score only the first N chunks (0: all 1,578)")
	only := flag.String("only", "", "comma-separated recipe names to run (default: all but the extra ones: q6, q4e8, q4g, 4b-learned, 4b-nl, ffn25+q3m, heads25+q3m)")
	flag.StringVar(&pngPath, "png", "", "also draw the chart as a PNG file here (for looking at it)")
	from := flag.String("from", "", "redraw the table and chart from a quant-results.json instead of measuring")
	flag.Parse()
	var err error
	if *from != "" {
		err = redraw(*from, *out)
	} else {
		err = run(*shared, *work, *out, *chunks, *only)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "qchart: %v\n", err)
		os.Exit(1)
	}
}

func run(shared, work, out string, chunks int, only string) error {
	base := filepath.Join(shared, "stories260K.bin")
	tok := filepath.Join(shared, "tok512.bin")
	textPath := filepath.Join(shared, "tinystories-valid-first1000.txt")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	textBytes, err := os.ReadFile(textPath)
	if err != nil {
		return err
	}
	text := string(textBytes)
	var pts, plain, vocab []*point
	for _, r := range recipes {
		named := strings.Contains(","+only+",", ","+r.Name+",")
		if only != "" && !named || only == "" && r.Extra {
			continue
		}
		p, err := build(r, base, tok, work, text)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Name, err)
		}
		pts = append(pts, p)
		if p.vocab() {
			vocab = append(vocab, p)
		} else {
			plain = append(plain, p)
		}
	}
	bm, _, err := models.Open(base, tok)
	if err != nil {
		return err
	}
	segs, err := quant.ChunkSegments(quant.TextTokens(bm.Tokenizer, text), 256, bm.Tokenizer.BOS)
	if err != nil {
		return err
	}
	if chunks > 0 && chunks < len(segs) {
		segs = segs[:chunks]
	}
	open := func(ps []*point) ([]*core.Model, error) {
		ms := make([]*core.Model, len(ps))
		for i, p := range ps {
			m, _, err := models.Open(p.File, "")
			if err != nil {
				return nil, err
			}
			ms[i] = m
			p.ActGroup = m.ActGroup
			p.BitsPerW = float64(p.Bytes) * 8 / float64(m.Config.NumWeights(m.SharedClassifier()))
		}
		return ms, nil
	}
	ms, err := open(plain)
	if err != nil {
		return err
	}
	scored, basePPL := 0, 0.0
	if len(plain) > 0 {
		start := time.Now()
		fmt.Fprintf(os.Stderr, "qchart: scoring %d files on %d chunks\n", len(plain), len(segs))
		rs, err := quant.EvaluateMany(ms, bm, segs, quant.Options{Progress: func(done int) {
			if done%50 == 0 || done == len(segs) {
				fmt.Fprintf(os.Stderr, "qchart: %d/%d chunks, %v\n", done, len(segs), time.Since(start).Round(time.Second))
			}
		}})
		if err != nil {
			return err
		}
		for i, p := range plain {
			r := rs[i]
			p.PPL, p.LnRatio, p.KLD, p.KLDP99, p.KLDMax, p.Top1, p.RMSDp = r.PPL, r.LnRatio, r.KLDMean, r.KLDP99, r.KLDMax, r.Top1, r.RMSDp
		}
		scored, basePPL = rs[0].Scored, rs[0].BasePPL
	}
	vms, err := open(vocab)
	if err != nil {
		return err
	}
	for i, p := range vocab {
		if err := vocabPoint(p, vms[i], bm, text, chunks); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	markBest(pts)
	cmdline := "go run ./quant/cmd/qchart"
	if chunks > 0 {
		cmdline += fmt.Sprintf(" -chunks %d", chunks)
	}
	if only != "" {
		cmdline += " -only " + only
	}
	res := results{GeneratedBy: cmdline, Chunks: len(segs), Scored: scored, BasePPL: basePPL, Points: pts, LlamaCpp: anchors}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "quant-results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return write(&res, out)
}

// results is quant-results.json.
type results struct {
	GeneratedBy string   `json:"generated_by"`
	Chunks      int      `json:"chunks"`
	Scored      int      `json:"scored_tokens"`
	BasePPL     float64  `json:"base_ppl"`
	Points      []*point `json:"points"`
	LlamaCpp    []anchor `json:"llama_cpp"`
}

// write writes the table and the chart of measured results.
func write(res *results, out string) error {
	md := table(res.Points, res.BasePPL, res.Chunks, res.Scored, res.GeneratedBy)
	if err := os.WriteFile(filepath.Join(out, "quant-results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := chart(res.Points, filepath.Join(out, "quant-chart.svg"), res.GeneratedBy); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}

// redraw rewrites the table and chart from a results file.
func redraw(from, out string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	markBest(res.Points)
	return write(&res, out)
}

// build runs the recipe's commands as a user would and returns its file.
func build(r recipe, base, tok, work, text string) (*point, error) {
	in := base
	var errb bytes.Buffer
	pruneFlags := r.Prune
	if r.VocabDocs != 0 {
		vf := filepath.Join(work, r.Name+"-vocab.txt")
		if err := os.WriteFile(vf, []byte(vocabText(text, r.VocabDocs)), 0o644); err != nil {
			return nil, err
		}
		pruneFlags = append([]string{"--vocab", vf}, pruneFlags...)
	}
	if len(pruneFlags) > 0 {
		pruned := filepath.Join(work, r.Name+"-pruned.mote")
		args := append([]string{"prune", base, "-z", tok, "-o", pruned}, pruneFlags...)
		if code := cli.Main(args, io.Discard, &errb); code != 0 {
			return nil, fmt.Errorf("mote %s: %s", strings.Join(args, " "), errb.String())
		}
		in = pruned
	}
	file := filepath.Join(work, r.Name+".mote")
	args := append([]string{"quant", in, "-z", tok, "-o", file}, r.Quant...)
	if in != base {
		args = append([]string{"quant", in, "-o", file}, r.Quant...) // the pruned container has its tokenizer
	}
	errb.Reset()
	if code := cli.Main(args, io.Discard, &errb); code != 0 {
		return nil, fmt.Errorf("mote %s: %s", strings.Join(args, " "), errb.String())
	}
	fmt.Fprint(os.Stderr, errb.String())
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	p := &point{recipe: r, File: file, Bytes: st.Size()}
	if p.About == "" {
		typ := r.Quant[len(r.Quant)-1]
		p.About = "--type " + typ
		for _, pr := range quant.Presets {
			if pr.Name == typ {
				p.About = pr.About
			}
		}
	}
	return p, nil
}

// vocabText is the first n documents of text (n < 0: all of it), as the
// text files of mote prune --vocab are written.
func vocabText(text string, n int) string {
	if n < 0 {
		return text
	}
	docs := strings.SplitAfter(text, quant.DocSeparator)
	return strings.Join(docs[:min(n, len(docs))], "")
}

// vocabPoint scores a vocabulary-pruned file against the base on the
// llama-perplexity chunks of the text its vocabulary was pruned to (the
// base's token ids, remapped: quant.CompareVocabPruned).
func vocabPoint(p *point, m, base *core.Model, text string, chunks int) error {
	segs, err := quant.ChunkSegments(quant.TextTokens(base.Tokenizer, vocabText(text, p.VocabDocs)), 256, base.Tokenizer.BOS)
	if err != nil {
		return err
	}
	if chunks > 0 && chunks < len(segs) {
		segs = segs[:chunks]
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "qchart: scoring %s (vocabulary %d) on %d chunks of its text\n", p.Name, m.Config.VocabSize, len(segs))
	r, err := quant.CompareVocabPruned(m, base, segs)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "qchart: %s done in %v\n", p.Name, time.Since(start).Round(time.Second))
	lost := r.LostMass
	p.PPL, p.LnRatio, p.KLD, p.Top1 = r.PPL, math.Log(r.PPL/r.BasePPL), r.KLDKept, r.Top1
	p.VocabKept, p.LostMass, p.EvalChunks, p.EvalScored = r.Kept, &lost, len(segs), r.Scored
	return nil
}

// markBest flags the points no other point beats on both size and KLD.
// Vocabulary-pruned points neither get the mark nor take it from others:
// their KLD leaves out the probability mass of the removed tokens and they
// were pruned to the very text they are scored on.
func markBest(pts []*point) {
	for _, p := range pts {
		p.Best = !p.vocab()
		for _, o := range pts {
			if o != p && !o.vocab() && o.Bytes <= p.Bytes && o.KLD < p.KLD {
				p.Best = false
			}
		}
	}
}

func table(pts []*point, basePPL float64, chunks, scored int, cmdline string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- Generated by `%s`; do not edit. -->\n\n", cmdline)
	fmt.Fprintf(&b, "stories260K, llama-perplexity protocol at context 256 on tinystories-valid-first1000.txt "+
		"(%d chunks, %d scored tokens), against the fp32 model (PPL %.4f). Bytes are whole files as written "+
		"(zstd container, tokenizer included). ★ marks the best file at its size (no smaller file has a lower KLD).\n\n",
		chunks, scored, basePPL)
	b.WriteString("Bits per weight divide by the weights of the model in the file (fewer after pruning).\n\n")
	b.WriteString("| recipe | bytes | bits/weight | mean KLD | 99% KLD | top-1 | PPL | ln(PPL/PPL_base) | RMS Δp | activations |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	sorted := append([]*point(nil), pts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Bytes > sorted[j].Bytes })
	var vocab []*point
	for _, p := range sorted {
		star := ""
		if p.Best {
			star = " ★"
		}
		act := "float"
		if p.ActGroup > 0 {
			act = fmt.Sprintf("int8 g%d", p.ActGroup)
		}
		p99, rms := fmt.Sprintf("%.4f", p.KLDP99), fmt.Sprintf("%.2f %%", 100*p.RMSDp)
		if p.vocab() {
			star, p99, rms = " †", "—", "—"
			vocab = append(vocab, p)
		}
		fmt.Fprintf(&b, "| %s%s | %s | %.2f | %.5f | %s | %.2f %% | %.4f | %.5f | %s | %s |\n",
			p.Name, star, commas(p.Bytes), p.BitsPerW, p.KLD, p99, 100*p.Top1, p.PPL, p.LnRatio, rms, act)
	}
	if len(vocab) > 0 {
		b.WriteString("\n† Vocabulary-pruned: scored with `quant.CompareVocabPruned` on the llama-perplexity chunks of the text " +
			"the vocabulary was pruned to (the base's ids remapped). Its mean KLD and top-1 compare with the base renormalised " +
			"on the kept tokens; the base's probability on the removed tokens (below) is lost on top of that, so these points " +
			"take no ★ and give none.\n\n")
		b.WriteString("| recipe | vocabulary | text | chunks | scored | base mass on removed tokens |\n|---|---:|---|---:|---:|---:|\n")
		for _, p := range vocab {
			what := "whole file"
			if p.VocabDocs > 0 {
				what = fmt.Sprintf("first %d stories", p.VocabDocs)
			}
			lost := 0.0
			if p.LostMass != nil {
				lost = *p.LostMass
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %d | %d | %.3f %% |\n", p.Name, p.VocabKept, what, p.EvalChunks, p.EvalScored, 100*lost)
		}
	}
	b.WriteString("\nllama.cpp on the same model and protocol (the issue's anchors):\n\n")
	b.WriteString("| llama.cpp type | bytes | bits/weight | mean KLD | top-1 |\n|---|---:|---:|---:|---:|\n")
	for _, a := range anchors {
		fmt.Fprintf(&b, "| %s | %s | %.2f | %.5f | %.2f %% |\n", a.Name, commas(a.Bytes), float64(a.Bytes)*8/260032, a.KLD, 100*a.Top1)
	}
	b.WriteString("\nRecipes:\n\n")
	for _, p := range pts {
		fmt.Fprintf(&b, "- %s: %s\n", p.Name, p.About)
	}
	return b.String()
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// chart draws file bytes (x) against mean KLD (y), both logarithmic.
func chart(pts []*point, path, cmdline string) error {
	p := plot.New()
	p.Title.Text = "stories260K: file size against mean KL divergence (context 256)"
	p.X.Label.Text = "file bytes"
	p.Y.Label.Text = "mean KLD vs fp32 (nats)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = sizeTicks{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())

	var front, others plotter.XYs
	var frontLabels, otherLabels []string
	sorted := append([]*point(nil), pts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Bytes < sorted[j].Bytes })
	for _, q := range sorted {
		xy := plotter.XY{X: float64(q.Bytes), Y: math.Max(q.KLD, 1e-6)}
		if q.Best {
			front, frontLabels = append(front, xy), append(frontLabels, q.Name)
		} else {
			others, otherLabels = append(others, xy), append(otherLabels, q.Name)
		}
	}
	var ll plotter.XYs
	var llLabels []string
	for _, a := range anchors {
		ll, llLabels = append(ll, plotter.XY{X: float64(a.Bytes), Y: a.KLD}), append(llLabels, a.Name)
	}
	blue, grey, red := color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 120, G: 120, B: 120, A: 255}, color.RGBA{R: 214, G: 39, B: 40, A: 255}
	if len(front) > 0 {
		line, scatter, err := plotter.NewLinePoints(front)
		if err != nil {
			return err
		}
		line.Color, scatter.Color, scatter.Shape = blue, blue, draw.CircleGlyph{}
		p.Add(line, scatter)
		p.Legend.Add("mote, best at its size", line, scatter)
		if err := addLabels(p, front, frontLabels, blue); err != nil {
			return err
		}
	}
	if len(others) > 0 {
		s, err := plotter.NewScatter(others)
		if err != nil {
			return err
		}
		s.Color, s.Shape = grey, draw.RingGlyph{}
		p.Add(s)
		p.Legend.Add("mote, other recipes", s)
		if err := addLabels(p, others, otherLabels, grey); err != nil {
			return err
		}
	}
	s, err := plotter.NewScatter(ll)
	if err != nil {
		return err
	}
	s.Color, s.Shape = red, draw.TriangleGlyph{}
	p.Add(s)
	p.Legend.Add("llama.cpp", s)
	if err := addLabels(p, ll, llLabels, red); err != nil {
		return err
	}
	// room around the points for their labels
	xmin, xmax, ymin, ymax := math.Inf(1), 0.0, math.Inf(1), 0.0
	for _, set := range []plotter.XYs{front, others, ll} {
		for _, xy := range set {
			xmin, xmax, ymin, ymax = min(xmin, xy.X), max(xmax, xy.X), min(ymin, xy.Y), max(ymax, xy.Y)
		}
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xmin*0.9, xmax*1.15, ymin*0.6, ymax*1.8
	p.Legend.Top, p.Legend.Left = true, false
	if pngPath != "" {
		if err := p.Save(9*vg.Inch, 6*vg.Inch, pngPath); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	w, err := p.WriterTo(9*vg.Inch, 6*vg.Inch, "svg")
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(&buf); err != nil {
		return err
	}
	// say how it was made, as generated files do
	svg := strings.Replace(buf.String(), "<svg", fmt.Sprintf("<!-- Generated by `%s`; do not edit. -->\n<svg", cmdline), 1)
	return os.WriteFile(path, []byte(svg), 0o644)
}

func addLabels(p *plot.Plot, xys plotter.XYs, names []string, c color.Color) error {
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: names})
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Color = c
		l.TextStyle[i].Font.Size = vg.Points(8)
	}
	l.Offset = vg.Point{X: vg.Points(4), Y: vg.Points(3)}
	p.Add(l)
	return nil
}

// sizeTicks labels a byte axis in kB at round values.
type sizeTicks struct{}

func (sizeTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for _, v := range []float64{50e3, 60e3, 70e3, 80e3, 90e3, 100e3, 125e3, 150e3, 175e3, 200e3, 250e3, 300e3, 350e3, 400e3, 500e3} {
		if v >= lo && v <= hi {
			ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%.0f kB", v/1e3)})
		}
	}
	return ts
}
