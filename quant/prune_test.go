package quant

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"mote/core"
	"mote/models"
)

// Tolerance for logits of two float32 evaluations of the same function in a
// different order of operations (stories260K's logits are of order 10).
const pruneLogitTol = 2e-3

func pruneShared(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "shared"}, parts...)...)
}

// pruneStories loads stories260K with its tokenizer.
func pruneStories(t testing.TB) *core.Model {
	t.Helper()
	m, _, err := models.Open(pruneShared("models", "stories260K.bin"), pruneShared("models", "tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// pruneStoriesText returns the first n documents of the TinyStories sample.
func pruneStoriesText(t testing.TB, n int) string {
	t.Helper()
	b, err := os.ReadFile(pruneShared("models", "tinystories-valid-first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.SplitAfter(string(b), pruneDocSep)
	if n < len(docs) {
		docs = docs[:n]
	}
	return strings.Join(docs, "")
}

// prForwardAll runs tokens through a core model and returns a copy of every
// position's logits.
func prForwardAll(m *core.Model, tokens []int) [][]float32 {
	s := m.NewState(len(tokens))
	var out [][]float32
	for pos, tok := range tokens {
		out = append(out, slices.Clone(m.Forward(s, tok, pos)))
	}
	return out
}

// prTraceAll does the same with the pruning reference forward.
func prTraceAll(p *pModel, tokens []int) [][]float32 {
	var out [][]float32
	p.trace(tokens, nil, noGram, nil, func(_ int, l []float32) { out = append(out, slices.Clone(l)) })
	return out
}

func prMaxAbsDiff(a, b [][]float32) float64 {
	var d float64
	for i := range a {
		for j := range a[i] {
			d = max(d, math.Abs(float64(a[i][j]-b[i][j])))
		}
	}
	return d
}

var (
	prCalibOnce sync.Once
	prCalib     [][]int
)

// prTestCalib is a small calibration set for tests (six sequences of text;
// the self-generated default is tested on its own).
func prTestCalib(t testing.TB, m *core.Model) [][]int {
	prCalibOnce.Do(func() {
		var err error
		prCalib, err = PruneTextCalib(m.Tokenizer, pruneStoriesText(t, 60), m.Config.SeqLen, 6)
		if err != nil {
			t.Fatal(err)
		}
	})
	return prCalib
}

func pruneTestTokens(m *core.Model) []int {
	return m.Tokenizer.Encode("Once upon a time, a little girl named Lily found a shiny red ball in the park.", true, false)
}

// The reference forward that gathers the statistics computes what
// core.Forward computes.
func TestPruneTraceMatchesForward(t *testing.T) {
	m := pruneStories(t)
	p, err := fromCore(m)
	if err != nil {
		t.Fatal(err)
	}
	toks := pruneTestTokens(m)
	if d := prMaxAbsDiff(prForwardAll(m, toks), prTraceAll(p, toks)); d > pruneLogitTol {
		t.Fatalf("reference forward differs from core.Forward by %g", d)
	}
	// and the round trip through the editable form keeps the model exactly
	back, err := p.toCore()
	if err != nil {
		t.Fatal(err)
	}
	if d := prMaxAbsDiff(prForwardAll(m, toks), prForwardAll(back, toks)); d != 0 {
		t.Fatalf("fromCore/toCore changed the logits by %g", d)
	}
}

func TestPruneSelfCalibReproducible(t *testing.T) {
	m := pruneStories(t)
	a := PruneSelfCalib(m, 7)
	b := PruneSelfCalib(m, 7)
	c := PruneSelfCalib(m, 8)
	sampled := 0
	for _, s := range a {
		if s[0] != m.Tokenizer.BOS || len(s) != 257 {
			t.Fatalf("sequence starts with %d, %d long", s[0], len(s))
		}
		sampled += len(s) - 1
	}
	if sampled < PruneCalibTokens {
		t.Fatalf("%d sampled tokens, want >= %d", sampled, PruneCalibTokens)
	}
	if !slices.EqualFunc(a, b, slices.Equal) {
		t.Fatal("same seed, different calibration tokens")
	}
	if slices.EqualFunc(a, c, slices.Equal) {
		t.Fatal("different seeds, same calibration tokens")
	}
}

// pruneAndRun prunes, validates, and runs a short greedy generation.
func pruneAndRun(t *testing.T, m *core.Model, o PruneOptions) (*core.Model, *PruneReport) {
	t.Helper()
	out, r, err := Prune(m, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	s := out.NewState(64)
	g := out.NewGenerator(s, core.NewSampler(out.Config.VocabSize, 0, 0, 1), out.Tokenizer.Encode("Once upon a time", true, false), 64)
	n := 0
	for {
		tok, _, ok := g.Next()
		if !ok {
			break
		}
		if tok < 0 || tok >= out.Config.VocabSize {
			t.Fatalf("generated token %d outside the vocabulary", tok)
		}
		n++
	}
	if n == 0 {
		t.Fatal("the pruned model generated nothing")
	}
	return out, r
}

// prMatF32 returns an fp32 matrix's values.
func prMatF32(t *testing.T, m *core.Mat) []float32 {
	t.Helper()
	if m.Type != core.F32 {
		t.Fatalf("matrix is %v, want f32", m.Type)
	}
	return m.F
}

func TestPruneFFN(t *testing.T) {
	m := pruneStories(t)
	calib := prTestCalib(t, m)
	out, r := pruneAndRun(t, m, PruneOptions{FFN: 0.25, Calib: calib, NoRefit: true})
	want := 172 - 43
	if out.Config.HiddenDim != want || len(r.FFNNeuronsKept) != 5 {
		t.Fatalf("hidden %d, %d layers reported, want %d", out.Config.HiddenDim, len(r.FFNNeuronsKept), want)
	}
	d := m.Config.Dim
	// The pruned model is the original with the removed neurons' w2 columns
	// zeroed: build that from the original and compare logits.
	ref, err := fromCore(m)
	if err != nil {
		t.Fatal(err)
	}
	for l, keep := range r.FFNNeuronsKept {
		if len(keep) != want || !slices.IsSorted(keep) {
			t.Fatalf("layer %d keeps %d neurons (sorted %v)", l, len(keep), slices.IsSorted(keep))
		}
		// shapes and rows: w1/w3 row i and w2 column i are neuron keep[i]
		w1, w2 := prMatF32(t, &out.Weights.W1[l]), prMatF32(t, &out.Weights.W2[l])
		for i, j := range keep {
			if !slices.Equal(w1[i*d:(i+1)*d], ref.layers[l].w1[j*d:(j+1)*d]) {
				t.Fatalf("layer %d: w1 row %d is not neuron %d", l, i, j)
			}
			if w2[3*want+i] != ref.layers[l].w2[3*172+j] {
				t.Fatalf("layer %d: w2 column %d is not neuron %d", l, i, j)
			}
		}
		kept := make([]bool, 172)
		for _, j := range keep {
			kept[j] = true
		}
		for j, k := range kept {
			if !k {
				for i := 0; i < d; i++ {
					ref.layers[l].w2[i*172+j] = 0
				}
			}
		}
	}
	zeroed, err := ref.toCore()
	if err != nil {
		t.Fatal(err)
	}
	toks := pruneTestTokens(m)
	if diff := prMaxAbsDiff(prForwardAll(out, toks), prForwardAll(zeroed, toks)); diff > pruneLogitTol {
		t.Fatalf("pruned model and zeroed original differ by %g", diff)
	}
	// the least important neurons went: removing the most important ones
	// instead must move the logits more (the score means something)
	worst, err := fromCore(m)
	if err != nil {
		t.Fatal(err)
	}
	st := worst.calibrate(calib, noGram)
	for l := range worst.layers {
		ly := &worst.layers[l]
		sc := prColImportance(ly.w2, 172, st.ffnHid[l])
		for j := range sc {
			sc[j] = -sc[j]
		}
		_, keep := prLowest(sc, 43)
		ly.w1, ly.w3, ly.w2 = prPickRows(ly.w1, d, keep), prPickRows(ly.w3, d, keep), prPickCols(ly.w2, 172, keep)
	}
	worst.c.HiddenDim = want
	wm, err := worst.toCore()
	if err != nil {
		t.Fatal(err)
	}
	base := prForwardAll(m, toks)
	if good, bad := prMeanAbsDiff(base, prForwardAll(out, toks)), prMeanAbsDiff(base, prForwardAll(wm, toks)); good >= bad {
		t.Fatalf("removing the least important neurons moved the logits by %g, the most important by %g", good, bad)
	}
}

// The least-squares refit makes the pruned model closer to the original on
// text it was not fitted on, for neurons and for heads.
func TestPruneRefitHelps(t *testing.T) {
	m := pruneStories(t)
	calib := prTestCalib(t, m)
	held := m.Tokenizer.Encode(strings.Split(pruneStoriesText(t, 200), pruneDocSep)[150], true, false)
	base := prForwardAll(m, held)
	for _, o := range []PruneOptions{{FFN: 0.25}, {FFN: 0.5}} {
		o.Calib = calib
		refit, _, err := Prune(m, o)
		if err != nil {
			t.Fatal(err)
		}
		o.NoRefit = true
		plain, _, err := Prune(m, o)
		if err != nil {
			t.Fatal(err)
		}
		if dr, dp := prMeanAbsDiff(base, prForwardAll(refit, held)), prMeanAbsDiff(base, prForwardAll(plain, held)); dr >= dp {
			t.Errorf("ffn %g: refit moves the logits by %g, plain selection by %g", o.FFN, dr, dp)
		}
	}
	// heads, on the editable model (core cannot hold a head-pruned model yet)
	heads := func(kind pGram) [][]float32 {
		p, err := fromCore(m)
		if err != nil {
			t.Fatal(err)
		}
		p.pruneHeads(p.calibrate(calib, kind), 2)
		return prTraceAll(p, held)
	}
	if dr, dp := prMeanAbsDiff(base, heads(gramAtt)), prMeanAbsDiff(base, heads(noGram)); dr >= dp {
		t.Errorf("heads: refit moves the logits by %g, plain selection by %g", dr, dp)
	}
}

// When the removed inputs are linear combinations of the kept ones, the
// refit reproduces the matrix's outputs exactly.
func TestPruneRefitExact(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const rows, cols = 7, 6
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = r.Float32()*2 - 1
	}
	keep := []int{0, 2, 3, 5}
	gram := make([]float64, cols*cols)
	var xs [][]float32
	for range 200 {
		x := make([]float32, cols)
		for _, c := range keep {
			x[c] = r.Float32()*2 - 1
		}
		x[1] = 0.5*x[0] - x[3] // dependent columns
		x[4] = 2 * x[5]
		xs = append(xs, x)
		gramAdd(gram, x)
	}
	gramMirror(gram, cols)
	// no ridge would be exact; with the ridge the error is small relative
	// to the outputs, and far below dropping the columns
	w2 := prRefit(w, cols, gram, keep)
	plain := prPickCols(w, cols, keep)
	var errRefit, errPlain, norm float64
	for _, x := range xs {
		for i := 0; i < rows; i++ {
			var y, yr, yp float64
			for c := 0; c < cols; c++ {
				y += float64(w[i*cols+c]) * float64(x[c])
			}
			for j, c := range keep {
				yr += float64(w2[i*len(keep)+j]) * float64(x[c])
				yp += float64(plain[i*len(keep)+j]) * float64(x[c])
			}
			errRefit += (y - yr) * (y - yr)
			errPlain += (y - yp) * (y - yp)
			norm += y * y
		}
	}
	if errRefit > 0.05*norm || errRefit > errPlain/20 {
		t.Fatalf("refit error %g, plain %g, output energy %g", errRefit, errPlain, norm)
	}
}

// OBS finds removable columns: with two inputs that are combinations of the
// others, removing two columns loses (almost) nothing.
func TestOBSSelectDependent(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const rows, cols = 5, 8
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = r.Float32()*2 - 1
	}
	gram := make([]float64, cols*cols)
	var xs [][]float32
	for range 300 {
		x := make([]float32, cols)
		for c := range x {
			x[c] = r.Float32()*2 - 1
		}
		x[2] = x[0] + x[1]
		x[6] = 0.5 * x[7]
		xs = append(xs, x)
		gramAdd(gram, x)
	}
	gramMirror(gram, cols)
	keep, w2, ok := obsSelect(w, cols, gram, 2)
	if !ok || len(keep) != cols-2 {
		t.Fatalf("ok %v, keep %v", ok, keep)
	}
	var e, norm float64
	for _, x := range xs {
		for i := 0; i < rows; i++ {
			var y, yr float64
			for c := 0; c < cols; c++ {
				y += float64(w[i*cols+c]) * float64(x[c])
			}
			for k, c := range keep {
				yr += float64(w2[i*len(keep)+k]) * float64(x[c])
			}
			e += (y - yr) * (y - yr)
			norm += y * y
		}
	}
	if e > 0.02*norm {
		t.Fatalf("removing %v loses %g of %g", keep, e, norm)
	}
}

func TestCholeskySolve(t *testing.T) {
	a := []float64{4, 2, 0.4, 2, 5, 1, 0.4, 1, 3}
	x := []float64{1, -2, 0.5}
	b := make([]float64, 3)
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			b[i] += a[i*3+j] * x[j]
		}
	}
	l := slices.Clone(a)
	if !cholesky(l, 3) {
		t.Fatal("positive definite matrix rejected")
	}
	cholSolve(l, 3, b)
	for i := range x {
		if math.Abs(b[i]-x[i]) > 1e-12 {
			t.Fatalf("solution %v, want %v", b, x)
		}
	}
	if cholesky([]float64{1, 2, 2, 1}, 2) {
		t.Fatal("indefinite matrix accepted")
	}
}

func prMeanAbsDiff(a, b [][]float32) float64 {
	var s float64
	n := 0
	for i := range a {
		for j := range a[i] {
			s += math.Abs(float64(a[i][j] - b[i][j]))
			n++
		}
	}
	return s / float64(n)
}

func TestPruneLayers(t *testing.T) {
	m := pruneStories(t)
	out, r := pruneAndRun(t, m, PruneOptions{Layers: 2, Calib: prTestCalib(t, m)})
	if out.Config.NLayers != 3 || len(r.LayersRemoved) != 2 || len(r.LayerInfluence) != 5 {
		t.Fatalf("layers %d, removed %v", out.Config.NLayers, r.LayersRemoved)
	}
	// the removed layers have the prLowest influence
	for l, v := range r.LayerInfluence {
		if slices.Contains(r.LayersRemoved, l) {
			continue
		}
		for _, rm := range r.LayersRemoved {
			if r.LayerInfluence[rm] > v {
				t.Fatalf("removed layer %d (influence %g) over kept layer %d (%g)", rm, r.LayerInfluence[rm], l, v)
			}
		}
	}
	// the kept layers are the original ones, in order
	i := 0
	for l := 0; l < 5; l++ {
		if slices.Contains(r.LayersRemoved, l) {
			continue
		}
		if !slices.Equal(prMatF32(t, &out.Weights.W2[i]), prMatF32(t, &m.Weights.W2[l])) ||
			!slices.Equal(out.Weights.RmsAtt[i*64:(i+1)*64], m.Weights.RmsAtt[l*64:(l+1)*64]) {
			t.Fatalf("output layer %d is not input layer %d", i, l)
		}
		i++
	}
}

// Head pruning, checked on the editable model: removing a key/value head and
// its query heads gives the same logits as zeroing those heads' wo columns
// in the original (what they would have added to the residual stream).
func TestPruneHeadsEquivalence(t *testing.T) {
	m := pruneStories(t)
	p, err := fromCore(m)
	if err != nil {
		t.Fatal(err)
	}
	st := p.calibrate(prTestCalib(t, m), noGram)
	kept := p.pruneHeads(st, 1)
	if p.c.NKVHeads != 3 || p.c.NHeads != 6 || p.qDim() != 48 || p.kvDim() != 24 {
		t.Fatalf("after pruning: %d heads, %d kv heads, q %d, kv %d", p.c.NHeads, p.c.NKVHeads, p.qDim(), p.kvDim())
	}
	for l, ly := range p.layers {
		if len(ly.wq) != 48*64 || len(ly.wk) != 24*64 || len(ly.wv) != 24*64 || len(ly.wo) != 64*48 || len(kept[l]) != 3 {
			t.Fatalf("layer %d: shapes %d %d %d %d", l, len(ly.wq), len(ly.wk), len(ly.wv), len(ly.wo))
		}
	}
	ref, err := fromCore(m)
	if err != nil {
		t.Fatal(err)
	}
	// query heads g*2, g*2+1 read key/value head g (8 heads, 4 kv heads, 8 wide)
	for l, keep := range kept {
		for g := 0; g < 4; g++ {
			if slices.Contains(keep, g) {
				continue
			}
			for i := 0; i < 64; i++ {
				clear(ref.layers[l].wo[i*64+g*16 : i*64+g*16+16])
			}
		}
	}
	zeroed, err := ref.toCore()
	if err != nil {
		t.Fatal(err)
	}
	toks := pruneTestTokens(m)
	if d := prMaxAbsDiff(prTraceAll(p, toks), prForwardAll(zeroed, toks)); d > pruneLogitTol {
		t.Fatalf("head-pruned model and zeroed original differ by %g", d)
	}
}

// Prune --heads builds a core model with fewer heads of the same size
// (core.Config.HeadDim): its shapes are right, core.Forward on it computes
// what the pruning reference computes, and, without the refit, what the
// original computes with the removed heads' wo columns zeroed.
func TestPruneHeadsCore(t *testing.T) {
	m := pruneStories(t)
	for _, tc := range []struct {
		frac          float64
		heads, kv, qd int
	}{{0.25, 6, 3, 48}, {0.5, 4, 2, 32}} {
		out, r := pruneAndRun(t, m, PruneOptions{Heads: tc.frac, NoRefit: true, Calib: prTestCalib(t, m)})
		c := out.Config
		if c.NHeads != tc.heads || c.NKVHeads != tc.kv || c.HeadSize() != 8 || c.HeadDim != 8 || c.QDim() != tc.qd || c.Dim != 64 {
			t.Fatalf("--heads %g: config %+v", tc.frac, c)
		}
		for l := 0; l < c.NLayers; l++ {
			w := &out.Weights
			if w.Wq[l].Rows != tc.qd || w.Wk[l].Rows != tc.kv*8 || w.Wv[l].Rows != tc.kv*8 || w.Wo[l].Cols != tc.qd ||
				w.Wo[l].Rows != 64 || len(r.KVHeadsKept[l]) != tc.kv {
				t.Fatalf("--heads %g, layer %d: wq %d rows, wk %d, wv %d, wo %dx%d", tc.frac, l,
					w.Wq[l].Rows, w.Wk[l].Rows, w.Wv[l].Rows, w.Wo[l].Rows, w.Wo[l].Cols)
			}
		}
		if want := int64(260032 - 5*2*64*(64-tc.qd) - 5*2*64*(32-tc.kv*8)); c.NumWeights(true) != want || r.ParamsAfter != want {
			t.Errorf("--heads %g: %d / %d weights, want %d", tc.frac, c.NumWeights(true), r.ParamsAfter, want)
		}
		ref, err := fromCore(m)
		if err != nil {
			t.Fatal(err)
		}
		for l, keep := range r.KVHeadsKept {
			for g := 0; g < 4; g++ {
				if !slices.Contains(keep, g) {
					for i := 0; i < 64; i++ {
						clear(ref.layers[l].wo[i*64+g*16 : i*64+g*16+16])
					}
				}
			}
		}
		zeroed, err := ref.toCore()
		if err != nil {
			t.Fatal(err)
		}
		toks := pruneTestTokens(m)
		got := prForwardAll(out, toks)
		if d := prMaxAbsDiff(got, prForwardAll(zeroed, toks)); d > pruneLogitTol {
			t.Fatalf("--heads %g: core.Forward of the pruned model and of the zeroed original differ by %g", tc.frac, d)
		}
		p, err := fromCore(out)
		if err != nil {
			t.Fatal(err)
		}
		if d := prMaxAbsDiff(got, prTraceAll(p, toks)); d > pruneLogitTol {
			t.Fatalf("--heads %g: core.Forward and the pruning reference differ by %g", tc.frac, d)
		}
	}
}

func TestPruneVocab(t *testing.T) {
	m := pruneStories(t)
	text := pruneStoriesText(t, 30)
	out, r := pruneAndRun(t, m, PruneOptions{VocabText: []string{text}})
	old, nt := m.Tokenizer, out.Tokenizer
	if r.VocabKept >= 512 || r.VocabKept <= 259 || len(nt.Vocab) != r.VocabKept {
		t.Fatalf("kept %d tokens", r.VocabKept)
	}
	// remap old -> new by position among the kept ids
	remap := make([]int, 512)
	for i := range remap {
		remap[i] = -1
	}
	j := 0
	for id, piece := range old.Vocab {
		if j < len(nt.Vocab) && nt.Vocab[j] == piece {
			remap[id] = j
			j++
		}
	}
	if j != len(nt.Vocab) {
		t.Fatalf("the pruned vocabulary is not an ordered subset of the original")
	}
	for id := 0; id < 259; id++ { // <unk>, BOS, EOS, byte fallback
		if remap[id] < 0 {
			t.Fatalf("token %d %q was removed", id, old.Vocab[id])
		}
	}
	if nt.BOS != remap[old.BOS] || nt.EOS != remap[old.EOS] {
		t.Fatalf("BOS/EOS %d/%d", nt.BOS, nt.EOS)
	}
	// the text and each document encode to the remapped original ids
	check := func(s string) bool {
		want := old.Encode(s, true, false)
		for i, id := range want {
			if remap[id] < 0 {
				return false
			}
			want[i] = remap[id]
		}
		if got := nt.Encode(s, true, false); !slices.Equal(got, want) {
			t.Fatalf("%.60q: got %v, want %v", s, got[:min(len(got), 20)], want[:min(len(want), 20)])
		}
		return true
	}
	if !check(text) || !check(strings.TrimSuffix(text, "\n")) {
		t.Fatal("the pruning text uses a removed token")
	}
	// embedding rows follow their tokens
	for id, nid := range remap {
		if nid >= 0 && !slices.Equal(out.Weights.TokenEmbedding.F[nid*64:(nid+1)*64], m.Weights.TokenEmbedding.F[id*64:(id+1)*64]) {
			t.Fatalf("embedding row %d is not token %d", nid, id)
		}
	}
	// unseen documents whose original encoding uses only kept tokens encode
	// identically too (see prune_vocab.go); some must qualify
	more := strings.Split(pruneStoriesText(t, 1000), pruneDocSep)[30:]
	same := 0
	for _, doc := range more {
		if doc = strings.TrimSpace(doc); doc != "" && check(doc) {
			same++
		}
	}
	if same == 0 {
		t.Fatal("no unseen document is covered by the kept vocabulary")
	}
	t.Logf("kept %d of 512 tokens; %d of %d unseen documents representable", r.VocabKept, same, len(more))
	// logits of kept tokens are the original logits of those tokens
	toks := old.Encode("Once upon a time", true, false)
	ntoks := make([]int, len(toks))
	for i, id := range toks {
		ntoks[i] = remap[id]
	}
	a, b := prForwardAll(m, toks), prForwardAll(out, ntoks)
	for pos := range a {
		for id, nid := range remap {
			if nid >= 0 && a[pos][id] != b[pos][nid] {
				t.Fatalf("pos %d: logit of token %d changed", pos, id)
			}
		}
	}
}

func TestPruneVocabNeedsByteTokens(t *testing.T) {
	tok, err := core.NewTokenizer([]string{"<unk>", "<s>", "</s>", " ", "a", "b", " a"}, []float32{0, 0, 0, 0, 0, 0, 1}, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VocabKeep(tok, []string{"a b"}); !errors.Is(err, ErrPrune) {
		t.Fatalf("err = %v", err)
	}
}

func TestSparsifyExactFraction(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		rows, cols int
		frac       float64
	}{{7, 13, 0.5}, {64, 172, 0.3}, {3, 5, 0.9}, {10, 64, 0.25}, {1, 1, 0.5}} {
		w := make([]float32, tc.rows*tc.cols)
		norm := make([]float64, tc.cols)
		for i := range w {
			w[i] = r.Float32()*2 - 1 + 1e-3 // never zero
		}
		for j := range norm {
			norm[j] = r.Float64() + 0.1
		}
		for _, nm := range [][]float64{nil, norm} {
			v := slices.Clone(w)
			z := sparsifyMat(v, tc.cols, nm, tc.frac, 0, 0)
			want := int(math.Round(tc.frac * float64(len(w))))
			zeros := 0
			for _, x := range v {
				if x == 0 {
					zeros++
				}
			}
			if z != want || zeros != want {
				t.Fatalf("%dx%d at %g: zeroed %d (reported %d), want %d", tc.rows, tc.cols, tc.frac, zeros, z, want)
			}
			// per row, every zeroed weight scores at most every kept one
			for i := 0; i < tc.rows; i++ {
				lo, hi := math.Inf(1), math.Inf(-1)
				for j := 0; j < tc.cols; j++ {
					s := math.Abs(float64(w[i*tc.cols+j]))
					if nm != nil {
						s *= nm[j]
					}
					if v[i*tc.cols+j] == 0 {
						hi = max(hi, s)
					} else {
						lo = min(lo, s)
					}
				}
				if hi > lo {
					t.Fatalf("row %d: a zeroed weight scores %g, a kept one %g", i, hi, lo)
				}
			}
		}
	}
}

func TestSparsifyNM(t *testing.T) {
	m := pruneStories(t)
	for _, nm := range [][2]int{{2, 4}, {1, 4}, {3, 8}} {
		n, mm := nm[0], nm[1]
		out, r := pruneAndRun(t, m, PruneOptions{N: n, M: mm, Method: Wanda, Calib: prTestCalib(t, m)})
		// every full group loses m-n, a tail group of k loses max(0, k-n)
		var want int64
		w := &out.Weights
		for l := range w.Wq {
			for _, mat := range []*core.Mat{&w.Wq[l], &w.Wk[l], &w.Wv[l], &w.Wo[l], &w.W1[l], &w.W2[l], &w.W3[l]} {
				perRow := (mat.Cols / mm) * (mm - n)
				if k := mat.Cols % mm; k > n {
					perRow += k - n
				}
				want += int64(mat.Rows * perRow)
			}
		}
		if r.Zeroed != want {
			t.Fatalf("%d:%d zeroed %d of %d, want %d", n, mm, r.Zeroed, r.Sparsed, want)
		}
		for l := range out.Weights.Wq {
			for _, mat := range []*core.Mat{&out.Weights.Wq[l], &out.Weights.Wo[l], &out.Weights.W1[l], &out.Weights.W2[l]} {
				for i := 0; i < mat.Rows; i++ {
					row := mat.F[i*mat.Cols : (i+1)*mat.Cols]
					for g := 0; g < len(row); g += mm {
						nz := 0
						for _, v := range row[g:min(g+mm, len(row))] {
							if v != 0 {
								nz++
							}
						}
						if nz > n {
							t.Fatalf("%d:%d: layer %d row %d group %d has %d non-zeros", n, mm, l, i, g/mm, nz)
						}
					}
				}
			}
		}
	}
}

func TestPruneSparsityModel(t *testing.T) {
	m := pruneStories(t)
	for _, method := range []SparsityMethod{Magnitude, Wanda} {
		out, r := pruneAndRun(t, m, PruneOptions{Sparsity: 0.5, Method: method, Calib: prTestCalib(t, m)})
		if r.Zeroed*2 != r.Sparsed {
			t.Fatalf("%v: zeroed %d of %d", method, r.Zeroed, r.Sparsed)
		}
		// the input model is untouched and the output keeps its shape
		if out.Config != m.Config || slices.Contains(m.Weights.Wq[0].F, 0) {
			t.Fatalf("%v: config changed or input modified", method)
		}
	}
	// Wanda and magnitude choose differently
	a, _, _ := Prune(m, PruneOptions{Sparsity: 0.5, Method: Magnitude})
	b, _, _ := Prune(m, PruneOptions{Sparsity: 0.5, Method: Wanda, Calib: prTestCalib(t, m)})
	if slices.Equal(a.Weights.W2[0].F, b.Weights.W2[0].F) {
		t.Fatal("wanda and magnitude zeroed the same weights")
	}
}

func TestPruneCombined(t *testing.T) {
	m := pruneStories(t)
	text := pruneStoriesText(t, 20)
	out, r := pruneAndRun(t, m, PruneOptions{FFN: 0.5, Layers: 1, VocabText: []string{text}, Sparsity: 0.2, Calib: prTestCalib(t, m)})
	c := out.Config
	if c.NLayers != 4 || c.HiddenDim != 86 || c.VocabSize != r.VocabKept || r.ParamsAfter != c.NumWeights(true) {
		t.Fatalf("config %+v, params %d -> %d", c, r.ParamsBefore, r.ParamsAfter)
	}
}

func TestPruneOptionErrors(t *testing.T) {
	m := pruneStories(t)
	for _, o := range []PruneOptions{
		{FFN: 1}, {FFN: -0.1}, {FFN: 0.001}, {Heads: 0.1}, {Heads: 0.9}, {Layers: 5}, {Layers: -1},
		{Sparsity: 1.5}, {N: 4, M: 4}, {N: 2, M: 4, Sparsity: 0.3}, {N: 0, M: 4},
	} {
		if _, _, err := Prune(m, o); !errors.Is(err, ErrPrune) {
			t.Errorf("%+v: err = %v", o, err)
		}
	}
	bad := PruneOptions{FFN: 0.5, Calib: [][]int{{1, 600}}}
	if _, _, err := Prune(m, bad); !errors.Is(err, ErrPrune) {
		t.Errorf("calibration token outside the vocabulary: err = %v", err)
	}
}

func TestPruneTextCalib(t *testing.T) {
	m := pruneStories(t)
	seqs, err := PruneTextCalib(m.Tokenizer, pruneStoriesText(t, 200), m.Config.SeqLen, 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 8 {
		t.Fatalf("%d sequences", len(seqs))
	}
	for _, s := range seqs {
		if len(s) != 257 || s[0] != m.Tokenizer.BOS {
			t.Fatalf("sequence of %d starting with %d", len(s), s[0])
		}
	}
	if _, err := PruneTextCalib(m.Tokenizer, pruneDocSep+"\n  ", m.Config.SeqLen, 0); !errors.Is(err, ErrPrune) {
		t.Fatalf("empty text: err = %v", err)
	}
}

// Vocabulary pruning changes only the base's mass on removed tokens: on the
// kept tokens the pruned model is the renormalised base.
func TestCompareVocabPruned(t *testing.T) {
	m := pruneStories(t)
	text := pruneStoriesText(t, 12)
	out, _, err := Prune(m, PruneOptions{VocabText: []string{text}})
	if err != nil {
		t.Fatal(err)
	}
	toks := m.Tokenizer.Encode(strings.TrimSuffix(text, "\n"), true, false)
	segs := []Segment{{Tokens: toks[:200], First: 100}, {Tokens: toks[200:400], First: 100}}
	segs[1].Tokens[0] = m.Tokenizer.BOS
	r, err := CompareVocabPruned(out, m, segs)
	if err != nil {
		t.Fatal(err)
	}
	if r.Scored != 198 || r.Kept != out.Config.VocabSize || r.KLDKept > 1e-9 || !(r.LostMass > 0 && r.LostMass < 1) {
		t.Fatalf("%+v", r)
	}
	// the pruned model's NLL is the base's plus -ln(1 - lost) per position
	// (on average, not exactly: the mean of logs), so it is lower or equal
	if r.PPL > r.BasePPL*(1+1e-9) {
		t.Fatalf("pruned PPL %g above base %g", r.PPL, r.BasePPL)
	}
	// a text with a removed token is refused
	bad := []Segment{{Tokens: m.Tokenizer.Encode("Xylophone quartz jubilee", true, false)}}
	if _, err := CompareVocabPruned(out, m, bad); !errors.Is(err, ErrPrune) {
		t.Fatalf("err = %v", err)
	}
	if mp, err := VocabMap(out.Tokenizer, m.Tokenizer); err != nil || len(mp) != out.Config.VocabSize || mp[out.Tokenizer.BOS] != m.Tokenizer.BOS {
		t.Fatalf("VocabMap: %v", err)
	}
}
