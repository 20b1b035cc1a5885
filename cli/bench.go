package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"mote/core"
	"mote/models"
)

// benchResult is one row of `mote bench`, also its --json line.
type benchResult struct {
	Model          string  `json:"model"`
	Type           string  `json:"type"`
	Target         string  `json:"target"`
	Kernels        string  `json:"kernels"` // go, avx2 or wasm-simd128
	LoadMS         float64 `json:"load_ms"`
	TTFTMS         float64 `json:"ttft_ms"`
	TokPerS        float64 `json:"tok_per_s"`
	TokPerSMin     float64 `json:"tok_per_s_min"`
	TokPerSMax     float64 `json:"tok_per_s_max"`
	PeakBytes      int64   `json:"peak_bytes"`
	ModelBytes     int64   `json:"model_bytes"`
	AllocsPerToken float64 `json:"allocs_per_token"`
	Tokens         int     `json:"tokens"`
	Runs           int     `json:"runs"`
	MACsPerToken   int64   `json:"macs_per_token"`
	KernelGMACs    float64 `json:"kernel_gmacs,omitempty"`
	CeilingTokS    float64 `json:"ceiling_tok_per_s,omitempty"`
	CeilingFrac    float64 `json:"ceiling_fraction,omitempty"`
	// profile: one step's matrix-vector products alone (every matrix once,
	// best of many passes) and their share of a decode step's time
	MatVecMS    float64 `json:"matvec_ms_per_token"`
	MatVecShare float64 `json:"matvec_share"`
}

type benchOpts struct {
	model, tokenizer, shape, typ, target string
	group, tokens, runs                  int
	json                                 bool
	matrix                               string // "shapes:types:targets", see --matrix
}

func parseBench(args []string) (benchOpts, error) {
	o := benchOpts{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.shape, "shape", "", "synthesize a model of this shape: 260K, 15M, 42M, 110M")
	fs.StringVar(&o.typ, "type", "q8", "weights for a synthesized model: f32, q8, q4")
	fs.IntVar(&o.group, "group", 32, "quantization group size for a synthesized model")
	fs.StringVar(&o.target, "target", "native", "native or wasip1 (the SIMD WASI build under wazero)")
	fs.IntVar(&o.tokens, "n", 256, "positions per run (the first is the time to first token)")
	fs.IntVar(&o.runs, "runs", 3, "runs; tok/s is the median")
	fs.BoolVar(&o.json, "json", false, "one JSON object per line on stdout")
	fs.StringVar(&o.tokenizer, "z", "", "tokenizer for MODEL (unused by the benchmark itself)")
	fs.StringVar(&o.matrix, "matrix", "", "run shapes x types x targets, e.g. 260K,15M:f32,q8,q4:native,wasip1, and print a markdown table")
	var rest []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return o, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) > 0 {
			rest = append(rest, args[0])
			args = args[1:]
		}
	}
	switch {
	case o.matrix != "":
		if len(rest) > 0 || o.shape != "" {
			return o, fmt.Errorf("%w: --matrix takes no MODEL or --shape", errUsage)
		}
		if len(strings.Split(o.matrix, ":")) != 3 {
			return o, fmt.Errorf("%w: --matrix is SHAPES:TYPES:TARGETS, e.g. 260K,15M:q8,q4:native,wasip1", errUsage)
		}
		return o, nil
	case len(rest) > 1:
		return o, fmt.Errorf("%w: bench takes one MODEL, got %q", errUsage, rest)
	case len(rest) == 1 && o.shape != "":
		return o, fmt.Errorf("%w: give a MODEL or --shape, not both", errUsage)
	case len(rest) == 1:
		o.model = rest[0]
	case o.shape == "":
		p, err := DefaultModel()
		if err != nil {
			return o, err
		}
		o.model = p
	}
	if o.shape != "" {
		if _, ok := core.Shapes[o.shape]; !ok {
			return o, fmt.Errorf("%w: unknown shape %q (260K, 15M, 42M, 110M)", errUsage, o.shape)
		}
		if _, err := parseDType(o.typ); err != nil {
			return o, err
		}
	}
	if o.tokens < 2 || o.runs < 1 || o.group < 1 {
		return o, fmt.Errorf("%w: -n must be >= 2, --runs and --group >= 1", errUsage)
	}
	if o.target != "native" && o.target != "wasip1" {
		return o, fmt.Errorf("%w: --target is native or wasip1, not %q", errUsage, o.target)
	}
	return o, nil
}

func parseDType(s string) (core.DType, error) {
	switch s {
	case "f32":
		return core.F32, nil
	case "q8":
		return core.Q8, nil
	case "q4":
		return core.Q4, nil
	}
	return 0, fmt.Errorf("%w: --type is f32, q8 or q4, not %q", errUsage, s)
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	o, err := parseBench(args)
	if err != nil {
		return err
	}
	if o.matrix != "" {
		return benchMatrix(o, stdout, stderr)
	}
	var r *benchResult
	if o.target == "wasip1" {
		r, err = benchWasip1(o, args, stderr)
	} else {
		r, err = benchNative(o)
	}
	if err != nil {
		return err
	}
	if o.json {
		b, _ := json.Marshal(r)
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\ttype\ttarget\tkernels\tload ms\tTTFT ms\ttok/s (median)\tmin\tmax\tpeak MB\tallocs/tok\tkernel ceiling\tmatvec share\t")
	ceiling := "-"
	if r.CeilingTokS > 0 {
		ceiling = fmt.Sprintf("%.0f tok/s (%.0f%%)", r.CeilingTokS, 100*r.CeilingFrac)
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.2f\t%s\t%.0f%%\t\n", r.Model, r.Type, r.Target, r.Kernels,
		r.LoadMS, r.TTFTMS, r.TokPerS, r.TokPerSMin, r.TokPerSMax, float64(r.PeakBytes)/(1<<20), r.AllocsPerToken, ceiling, 100*r.MatVecShare)
	return tw.Flush()
}

// benchNative loads or synthesizes the model and decodes greedily from BOS.
func benchNative(o benchOpts) (*benchResult, error) {
	r := &benchResult{Target: "native", Kernels: core.Kernels(), Tokens: o.tokens, Runs: o.runs}
	if runtime.GOOS == "wasip1" {
		r.Target = "wasip1"
	}
	t0 := time.Now()
	var m *core.Model
	if o.shape != "" {
		dt, _ := parseDType(o.typ)
		var err error
		if m, err = core.RandomModel(core.Shapes[o.shape], dt, o.group, 1); err != nil {
			return nil, err
		}
		r.Model, r.Type = o.shape, o.typ
	} else {
		var info *models.Info
		var err error
		if m, info, err = models.Open(o.model, ""); err != nil {
			return nil, err
		}
		r.Model, r.Type = o.model, weightTypes(m)
		r.ModelBytes = info.FileBytes
	}
	r.LoadMS = ms(time.Since(t0))
	if r.ModelBytes == 0 {
		r.ModelBytes = weightBytes(m)
	}
	steps := m.Config.Steps(o.tokens)
	s := m.NewState(steps)
	s.Par = nativeParallel()
	var rates []float64
	var allocs uint64
	var ttft float64
	var ms0, ms1 runtime.MemStats
	for run := 0; run < o.runs; run++ {
		runtime.ReadMemStats(&ms0)
		start := time.Now()
		tok := 1 // BOS
		var first time.Time
		for pos := 0; pos < steps; pos++ {
			tok = core.Argmax(m.Forward(s, tok, pos))
			if pos == 0 {
				first = time.Now()
			}
		}
		end := time.Now()
		runtime.ReadMemStats(&ms1)
		if run == 0 {
			ttft = ms(first.Sub(start))
		}
		allocs += ms1.Mallocs - ms0.Mallocs
		rates = append(rates, float64(steps-1)/end.Sub(first).Seconds())
	}
	slices.Sort(rates)
	r.TTFTMS = ttft
	r.TokPerS, r.TokPerSMin, r.TokPerSMax = rates[len(rates)/2], rates[0], rates[len(rates)-1]
	r.AllocsPerToken = float64(allocs) / float64(o.runs*steps)
	r.PeakBytes = peakBytes()
	r.MACsPerToken = macsPerToken(m, steps)
	r.MatVecMS = matVecTime(m, s.Par)
	r.MatVecShare = r.MatVecMS * r.TokPerS / 1000
	if o.shape != "" {
		r.KernelGMACs = kernelRate(m, s.Par)
		r.CeilingTokS = r.KernelGMACs * 1e9 / float64(r.MACsPerToken)
		r.CeilingFrac = r.TokPerS / r.CeilingTokS
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// macsPerToken counts the multiply-adds of one decode step: every matrix
// (embedding lookup excluded, classifier included) plus attention at the
// mean position of a run of steps.
func macsPerToken(m *core.Model, steps int) int64 {
	c := &m.Config
	d, h, kv, qd := int64(c.Dim), int64(c.HiddenDim), int64(c.KVDim()), int64(c.QDim())
	perLayer := 2*d*qd + 2*d*kv + 3*d*h + 2*int64(c.NHeads)*int64(c.HeadSize())*int64(steps)/2
	return int64(c.NLayers)*perLayer + int64(c.VocabSize)*d
}

// kernelRate measures the matrix-vector kernel the model uses on its largest
// matrix (the classifier), split across cores as decoding splits it, in G
// multiply-adds per second: the ceiling decoding could reach if every
// multiply-add ran at that rate.
func kernelRate(m *core.Model, par core.Parallel) float64 {
	w := m.Weights.Wcls
	job := benchJob(m, w)
	run := func() {
		if par != nil {
			par.Do(w.Rows, &job)
		} else {
			job.Run(0, w.Rows)
		}
	}
	run() // warm up
	n := 0
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond {
		run()
		n++
	}
	return float64(n) * float64(w.Rows) * float64(w.Cols) / time.Since(start).Seconds() / 1e9
}

// matVecTime measures the matrix-vector products of one decode step alone,
// in ms: every matrix the forward pass multiplies (the classifier included),
// with quantized activations where the step quantizes them, split across
// cores as decoding splits them; the fastest of the passes in ~300 ms.
// Against the step time it says how much of decoding is the kernels.
func matVecTime(m *core.Model, par core.Parallel) float64 {
	w := &m.Weights
	var jobs []core.MatVecJob
	for l := 0; l < m.Config.NLayers; l++ {
		for _, mt := range []*core.Mat{&w.Wq[l], &w.Wk[l], &w.Wv[l], &w.Wo[l], &w.W1[l], &w.W3[l], &w.W2[l]} {
			jobs = append(jobs, benchJob(m, mt))
		}
	}
	jobs = append(jobs, benchJob(m, w.Wcls))
	best := time.Duration(1 << 62)
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		t0 := time.Now()
		for i := range jobs {
			if par != nil {
				par.Do(jobs[i].W.Rows, &jobs[i])
			} else {
				jobs[i].Run(0, jobs[i].W.Rows)
			}
		}
		best = min(best, time.Since(t0))
	}
	return ms(best)
}

// benchJob is a product of w with a fixed input, quantized as Forward would.
func benchJob(m *core.Model, w *core.Mat) core.MatVecJob {
	x := make([]float32, w.Cols)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	job := core.MatVecJob{Out: make([]float32, w.Rows), W: w, X: x}
	if m.ActGroup > 0 && w.Type != core.F32 {
		q := core.NewQVec(w.Cols, m.ActGroup)
		core.QuantizeQ8(&q, x)
		job.XQ = &q
	}
	return job
}

// weightTypes lists the matrix types of a model, e.g. "q8" or "f32+q8".
func weightTypes(m *core.Model) string {
	seen := map[string]bool{}
	var names []string
	for _, mat := range allMats(m) {
		if n := mat.Type.String(); !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return strings.Join(names, "+")
}

func weightBytes(m *core.Model) int64 {
	var n int64
	for _, mat := range allMats(m) {
		n += mat.Bytes()
	}
	if !m.SharedClassifier() {
		n += m.Weights.Wcls.Bytes()
	}
	w := &m.Weights
	return n + 4*int64(len(w.RmsAtt)+len(w.RmsFFN)+len(w.RmsFinal))
}

func allMats(m *core.Model) []*core.Mat {
	w := &m.Weights
	ms := []*core.Mat{&w.TokenEmbedding}
	for _, set := range [][]core.Mat{w.Wq, w.Wk, w.Wv, w.Wo, w.W1, w.W2, w.W3} {
		for i := range set {
			ms = append(ms, &set[i])
		}
	}
	return ms
}

var errNoWasip1 = errors.New("--target wasip1 runs only from the native binary")

// benchMatrix runs every shape x type x target and prints one markdown table
// (progress on stderr). Each cell is a separate `mote bench` run; wasip1
// cells run the SIMD WASI build under wazero.
func benchMatrix(o benchOpts, stdout, stderr io.Writer) error {
	parts := strings.Split(o.matrix, ":")
	var rows []*benchResult
	for _, shape := range strings.Split(parts[0], ",") {
		for _, typ := range strings.Split(parts[1], ",") {
			for _, target := range strings.Split(parts[2], ",") {
				args := []string{"--shape", shape, "--type", typ, "--target", target, "-n", fmt.Sprint(o.tokens),
					"--runs", fmt.Sprint(o.runs), "--group", fmt.Sprint(o.group)}
				if _, err := parseBench(args); err != nil {
					return err
				}
				fmt.Fprintf(stderr, "bench %s %s %s ...\n", shape, typ, target)
				r, err := benchCell(args, stderr)
				if err != nil {
					return fmt.Errorf("%s %s %s: %w", shape, typ, target, err)
				}
				rows = append(rows, r)
			}
		}
	}
	fmt.Fprintln(stdout, "| shape | type | target | kernels | tok/s (median) | min-max | of kernel ceiling | matvec share | TTFT ms | load ms | peak MB | model MB | allocs/token |")
	fmt.Fprintln(stdout, "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(stdout, "| %s | %s | %s | %s | %.0f | %.0f-%.0f | %.0f %% | %.0f %% | %.1f | %.0f | %.1f | %.1f | %.2f |\n",
			r.Model, r.Type, r.Target, r.Kernels, r.TokPerS, r.TokPerSMin, r.TokPerSMax, 100*r.CeilingFrac, 100*r.MatVecShare,
			r.TTFTMS, r.LoadMS, float64(r.PeakBytes)/(1<<20), float64(r.ModelBytes)/(1<<20), r.AllocsPerToken)
	}
	return nil
}
