package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"mote/core"
)

// Text classification over sentence embeddings, two ways: zero-shot (cosine
// to embedded label descriptions, softmax with a temperature) and a trained
// linear softmax head (core.Head), fitted here with a bag-of-words baseline
// on the same split so that its accuracy means something.

// DefaultZeroShotTemp and DefaultTemplate are zero-shot's defaults: cosine
// similarities of MiniLM embeddings differ by a few hundredths between
// plausible labels, so a temperature near 0.05 turns them into usable
// probabilities; a short sentence around the label embeds closer to texts
// than the bare word does.
const (
	DefaultZeroShotTemp = 0.05
	DefaultTemplate     = "This text is about {}."
)

// ZeroShot scores each text against labels: out[i][k] is the probability of
// label k for text i, the softmax at temperature temp of the cosine between
// the text's embedding and that of template with "{}" replaced by the label.
func (e *Embedder) ZeroShot(model string, texts, labels []string, template string, temp float32, o EmbedOptions) ([][]float32, error) {
	if len(labels) < 2 {
		return nil, fmt.Errorf("%w: zero-shot needs at least 2 labels, got %d", ErrBadInput, len(labels))
	}
	if !(temp > 0 && temp <= 100) {
		return nil, fmt.Errorf("%w: temperature %g outside (0, 100]", ErrBadInput, temp)
	}
	if template == "" {
		template = "{}"
	}
	desc := make([]string, len(labels))
	for k, l := range labels {
		if strings.TrimSpace(l) == "" {
			return nil, fmt.Errorf("%w: label %d is empty", ErrBadInput, k)
		}
		desc[k] = strings.ReplaceAll(template, "{}", l)
	}
	le, err := e.Embed(model, desc, o)
	if err != nil {
		return nil, err
	}
	te, err := e.Embed(model, texts, o)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i, v := range te.Vectors {
		out[i] = make([]float32, len(labels))
		core.ZeroShot(v, le.Vectors, temp, out[i])
	}
	return out, nil
}

// Classify gives the head's label probabilities for each text.
func (e *Embedder) Classify(model string, h *core.Head, texts []string, o EmbedOptions) ([][]float32, error) {
	if err := h.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	enc, err := e.get(model)
	if err != nil {
		return nil, err
	}
	if h.Dim != enc.m.Config.Dim {
		return nil, fmt.Errorf("%w: the head takes %d-wide embeddings, encoder %q makes %d", ErrBadInput, h.Dim, model, enc.m.Config.Dim)
	}
	r, err := e.Embed(model, texts, o)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i, v := range r.Vectors {
		out[i] = make([]float32, len(h.Labels))
		h.Probs(v, out[i])
	}
	return out, nil
}

// LabeledText is one training example.
type LabeledText struct {
	Label, Text string
}

// TrainConfig controls TrainHead.
type TrainConfig struct {
	Split     float64 // fraction of the data trained on, the rest held out (default 0.8)
	Seed      uint64  // seed of the shuffle that splits the data (default 1)
	MaxTokens int     // texts are cut to this many tokens, [CLS] and [SEP] included (default: the context)
	Epochs    int     // core.TrainOptions (defaults there)
	LR, L2    float64
	Progress  func(done, total int) // called as texts are embedded (may be nil)
}

// TrainReport is what TrainHead measured on the held-out texts.
type TrainReport struct {
	Labels        []string
	Train, Test   int
	Accuracy      float64 // the embedding head
	BagOfWords    float64 // a linear softmax over the same tokens as the encoder saw (counts, log-scaled, L2-normalized)
	BagOfWordsAll float64 // the same over every token of the text (no truncation)
	Majority      float64 // always answering the most frequent training label
	Confusion     [][]int // [true][predicted] counts of the embedding head
	Truncated     int     // texts cut to MaxTokens
	L2            float64 // the head's weight decay (chosen on a validation part of the training texts unless given)
	BagOfWordsL2  float64 // the same-tokens baseline's
	EmbedTime     time.Duration
}

// TrainHead fits a linear softmax head on the embeddings of a shuffled
// Split of data and reports its accuracy on the rest, beside bag-of-words
// baselines trained and tested on the same split with the same trainer.
// The head returned is the one evaluated (trained on the training part).
func (e *Embedder) TrainHead(model string, data []LabeledText, c TrainConfig) (*core.Head, *TrainReport, error) {
	enc, err := e.get(model)
	if err != nil {
		return nil, nil, err
	}
	if c.Split == 0 {
		c.Split = 0.8
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	m := enc.m
	ctx := m.Config.SeqLen
	if c.MaxTokens <= 0 || c.MaxTokens > ctx {
		c.MaxTokens = ctx
	}
	if !(c.Split > 0 && c.Split < 1) || c.MaxTokens < 3 {
		return nil, nil, fmt.Errorf("%w: split %g outside (0, 1) or max tokens %d below 3", ErrBadInput, c.Split, c.MaxTokens)
	}
	// labels, in order of first appearance
	var labels []string
	index := map[string]int{}
	y := make([]int, len(data))
	for i, d := range data {
		k, ok := index[d.Label]
		if !ok {
			k = len(labels)
			index[d.Label] = k
			labels = append(labels, d.Label)
		}
		y[i] = k
	}
	if len(labels) < 2 || len(labels) > core.MaxLabels {
		return nil, nil, fmt.Errorf("%w: %d distinct labels (2..%d needed)", ErrBadInput, len(labels), core.MaxLabels)
	}
	order := rand.New(rand.NewPCG(c.Seed, 0x6d6f7465)).Perm(len(data))
	nTrain := int(math.Round(c.Split * float64(len(data))))
	if nTrain < 1 || nTrain >= len(data) {
		return nil, nil, fmt.Errorf("%w: %d examples cannot be split %g / %g", ErrBadInput, len(data), c.Split, 1-c.Split)
	}
	r := &TrainReport{Labels: labels, Train: nTrain, Test: len(data) - nTrain}

	// embed every text (cut to MaxTokens) and keep its tokens for the baselines
	dim := m.Config.Dim
	emb := make([]core.Example, len(data))
	bow := make([]core.Example, len(data))
	bowAll := make([]core.Example, len(data))
	s := enc.state()
	defer enc.release(s)
	vecs := make([]float32, len(data)*dim)
	start := time.Now()
	for i, d := range data {
		if !utf8.ValidString(d.Text) {
			return nil, nil, fmt.Errorf("%w: example %d is not valid UTF-8", ErrBadInput, i)
		}
		all := m.Tokenizer.Encode(d.Text, true)
		toks := all
		if len(toks) > c.MaxTokens {
			toks = append(slices.Clone(toks[:c.MaxTokens-1]), m.Tokenizer.SEP)
			r.Truncated++
		}
		v := vecs[i*dim : (i+1)*dim]
		m.Embed(s, toks, v)
		emb[i] = core.Example{Val: v, Label: y[i]}
		bow[i] = bagOfWords(toks, m.Tokenizer, y[i])
		bowAll[i] = bagOfWords(all, m.Tokenizer, y[i])
		if c.Progress != nil {
			c.Progress(i+1, len(data))
		}
	}
	r.EmbedTime = time.Since(start)

	split := func(ex []core.Example) (train, test []core.Example) {
		for j, i := range order {
			if j < nTrain {
				train = append(train, ex[i])
			} else {
				test = append(test, ex[i])
			}
		}
		return train, test
	}
	o := core.TrainOptions{Epochs: c.Epochs, LR: c.LR, L2: c.L2}
	trainE, testE := split(emb)
	w, b, l2 := fit(dim, len(labels), trainE, o)
	head := &core.Head{Labels: labels, Dim: dim, W: w, B: b}
	r.Accuracy, r.Confusion = evaluate(w, b, dim, len(labels), testE)
	r.L2 = l2
	vocab := m.Config.VocabSize
	for _, x := range []struct {
		ex  []core.Example
		acc *float64
		l2  *float64
	}{{bow, &r.BagOfWords, &r.BagOfWordsL2}, {bowAll, &r.BagOfWordsAll, nil}} {
		tr, te := split(x.ex)
		w, b, l2 := fit(vocab, len(labels), tr, o)
		*x.acc, _ = evaluate(w, b, vocab, len(labels), te)
		if x.l2 != nil {
			*x.l2 = l2
		}
	}
	counts := make([]int, len(labels))
	for _, ex := range trainE {
		counts[ex.Label]++
	}
	major := slices.Index(counts, slices.Max(counts))
	right := 0
	for _, ex := range testE {
		if ex.Label == major {
			right++
		}
	}
	r.Majority = float64(right) / float64(len(testE))
	return head, r, nil
}

// l2Grid are the weight decays fit chooses from.
var l2Grid = []float64{1e-2, 1e-3, 1e-4, 1e-5, 1e-6}

// fit trains a linear classifier. Without a weight decay given (o.L2 0),
// it picks the one of l2Grid that does best on the last fifth of the
// training examples when trained on the rest (never on the held-out ones),
// then trains on all of them with it. Every model (the head and the
// baselines) is chosen the same way, so the comparison is even.
func fit(dim, k int, train []core.Example, o core.TrainOptions) (w, b []float32, l2 float64) {
	if o.L2 > 0 || len(train) < 10 {
		w, b = core.TrainLinear(dim, k, train, o)
		return w, b, o.L2
	}
	cut := len(train) * 4 / 5
	best := -1.0
	for _, c := range l2Grid {
		oc := o
		oc.L2 = c
		w, b := core.TrainLinear(dim, k, train[:cut], oc)
		if acc, _ := evaluate(w, b, dim, k, train[cut:]); acc > best {
			best, l2 = acc, c
		}
	}
	o.L2 = l2
	w, b = core.TrainLinear(dim, k, train, o)
	return w, b, l2
}

// bagOfWords turns token ids (without [CLS] and [SEP]) into a sparse
// vector of log(1+count), L2-normalized.
func bagOfWords(toks []int, t *core.WordPiece, label int) core.Example {
	counts := map[int]int{}
	for _, id := range toks {
		if id != t.CLS && id != t.SEP {
			counts[id]++
		}
	}
	ids := make([]int, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a fixed order: sums and training stay deterministic
	ex := core.Example{Idx: make([]int32, len(ids)), Val: make([]float32, len(ids)), Label: label}
	var ss float64
	for j, id := range ids {
		v := math.Log1p(float64(counts[id]))
		ex.Idx[j], ex.Val[j] = int32(id), float32(v)
		ss += v * v
	}
	if ss > 0 {
		for j := range ex.Val {
			ex.Val[j] = float32(float64(ex.Val[j]) / math.Sqrt(ss))
		}
	}
	return ex
}

// evaluate returns the accuracy and confusion matrix of a linear classifier.
func evaluate(w, b []float32, dim, k int, test []core.Example) (float64, [][]int) {
	conf := make([][]int, k)
	for i := range conf {
		conf[i] = make([]int, k)
	}
	scores := make([]float32, k)
	right := 0
	for _, ex := range test {
		core.LinearScores(w, b, dim, ex.Idx, ex.Val, scores)
		best := 0
		for j := range scores {
			if scores[j] > scores[best] {
				best = j
			}
		}
		conf[ex.Label][best]++
		if best == ex.Label {
			right++
		}
	}
	if len(test) == 0 {
		return 0, conf
	}
	return float64(right) / float64(len(test)), conf
}
