package models

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"mote/core"
)

var (
	ggufTestFile   = filepath.Join("..", "..", "shared", "models", "stories260K.gguf")
	ggufTestLegacy = filepath.Join("..", "..", "shared", "models", "stories260K.bin")
	ggufTestTok    = filepath.Join("..", "..", "shared", "models", "tok512.bin")
	ggufTestRef    = filepath.Join("..", "..", "shared", "reference")
)

// Tolerances for reduced-precision copies of stories260K, over the logits of
// a 64-token run (|logits| reach 22, RMS 9.3): largest absolute difference
// from fp32, and NMSE (sum of squared differences / sum of squares). Measured
// on this model: F16 0.017 and 1.1e-7 (half rounding is 2^-11 relative);
// Q8_0, activations quantized in blocks of 32 too, 0.46 and 9.2e-5 (0.27 and
// 3.5e-5 with float activations).
const (
	ggufF16MaxAbs  = 0.05
	ggufF16NMSE    = 1e-6
	ggufQ8_0MaxAbs = 1.0
	ggufQ8_0NMSE   = 3e-4
)

func TestHalfToFloat32Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got, want := halfToFloat32(h), ggufHalfRef(h)
		gb, wb := math.Float32bits(got), math.Float32bits(want)
		if want != want {
			// NaN: keep the sign and the payload (as ggml's software conversion)
			if got == got || gb>>31 != uint32(h>>15) || gb&0x7fffff != uint32(h&0x3ff)<<13 {
				t.Fatalf("half %#04x: got %#08x, want a NaN with sign %d and payload %#x", h, gb, h>>15, h&0x3ff)
			}
			continue
		}
		if gb != wb {
			t.Fatalf("half %#04x: got %g (%#08x), want %g (%#08x)", h, got, gb, want, wb)
		}
	}
	// the test writer's encoder inverts it on every non-NaN half
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue
		}
		if back := ggufFloatToHalf(halfToFloat32(h)); back != h {
			t.Fatalf("half %#04x -> %g -> %#04x", h, halfToFloat32(h), back)
		}
	}
	// ... and rounds ties to even
	for _, c := range []struct {
		f    float32
		want uint16
	}{{1 + 1.0/2048, 0x3c00}, {1 + 3.0/2048, 0x3c02}, {65519, 0x7bff}, {65520, 0x7c00}, {0x1p-25, 0}, {0x1.8p-25, 1}} {
		if got := ggufFloatToHalf(c.f); got != c.want {
			t.Errorf("ggufFloatToHalf(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
}

func ggufOpen(t testing.TB, path string) (*core.Model, *Info) {
	t.Helper()
	m, info, err := Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return m, info
}

func ggufRead(t testing.TB, name string, data []byte) *core.Model {
	t.Helper()
	m, _, err := ReadBytes(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// ggufSameWeights reports the first tensor in which two models differ
// (values compared bit for bit, after dequantizing nothing).
func ggufSameWeights(a, b *core.Model) error {
	if a.Config != b.Config {
		return fmt.Errorf("config %+v vs %+v", a.Config, b.Config)
	}
	wa, wb := &a.Weights, &b.Weights
	f32 := func(name string, x, y []float32) error {
		if len(x) != len(y) {
			return fmt.Errorf("%s: %d vs %d values", name, len(x), len(y))
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return fmt.Errorf("%s[%d]: %g vs %g", name, i, x[i], y[i])
			}
		}
		return nil
	}
	mat := func(name string, x, y *core.Mat) error {
		if x.Type != y.Type || x.Rows != y.Rows || x.Cols != y.Cols || x.GroupSize != y.GroupSize {
			return fmt.Errorf("%s: %v %dx%d/%d vs %v %dx%d/%d", name, x.Type, x.Rows, x.Cols, x.GroupSize, y.Type, y.Rows, y.Cols, y.GroupSize)
		}
		if !slices.Equal(x.Q, y.Q) {
			return fmt.Errorf("%s: int8 values differ", name)
		}
		if err := f32(name+" scales", x.S, y.S); err != nil {
			return err
		}
		return f32(name, x.F, y.F)
	}
	errs := []error{
		mat("token_embd", &wa.TokenEmbedding, &wb.TokenEmbedding), mat("output", wa.Wcls, wb.Wcls),
		f32("rms_att", wa.RmsAtt, wb.RmsAtt), f32("rms_ffn", wa.RmsFFN, wb.RmsFFN), f32("rms_final", wa.RmsFinal, wb.RmsFinal),
	}
	for l := 0; l < a.Config.NLayers; l++ {
		for _, p := range []struct {
			name string
			x, y []core.Mat
		}{{"wq", wa.Wq, wb.Wq}, {"wk", wa.Wk, wb.Wk}, {"wv", wa.Wv, wb.Wv}, {"wo", wa.Wo, wb.Wo},
			{"w1", wa.W1, wb.W1}, {"w2", wa.W2, wb.W2}, {"w3", wa.W3, wb.W3}} {
			errs = append(errs, mat(fmt.Sprintf("%s[%d]", p.name, l), &p.x[l], &p.y[l]))
		}
	}
	return errors.Join(errs...)
}

func ggufSameTokenizer(a, b *core.Tokenizer) error {
	if a == nil || b == nil {
		return fmt.Errorf("tokenizer missing: %v %v", a != nil, b != nil)
	}
	if !slices.Equal(a.Vocab, b.Vocab) {
		for i := range min(len(a.Vocab), len(b.Vocab)) {
			if a.Vocab[i] != b.Vocab[i] {
				return fmt.Errorf("piece %d: %q vs %q", i, a.Vocab[i], b.Vocab[i])
			}
		}
		return fmt.Errorf("vocab sizes %d vs %d", len(a.Vocab), len(b.Vocab))
	}
	for i := range a.Scores {
		if math.Float32bits(a.Scores[i]) != math.Float32bits(b.Scores[i]) {
			return fmt.Errorf("score %d: %g vs %g", i, a.Scores[i], b.Scores[i])
		}
	}
	if a.BOS != b.BOS || a.EOS != b.EOS || a.MaxTokenLength != b.MaxTokenLength {
		return fmt.Errorf("bos/eos/max %d/%d/%d vs %d/%d/%d", a.BOS, a.EOS, a.MaxTokenLength, b.BOS, b.EOS, b.MaxTokenLength)
	}
	return nil
}

func TestGGUFStories260K(t *testing.T) {
	m, info := ggufOpen(t, ggufTestFile)
	if info.Format != FormatGGUF || info.Version != 3 {
		t.Errorf("info %+v, want gguf version 3", info)
	}
	want := core.Config{Dim: 64, HiddenDim: 172, NLayers: 5, NHeads: 8, NKVHeads: 4, VocabSize: 512,
		SeqLen: 2048, NormEps: 1e-5, RopeTheta: 10000}
	if m.Config != want {
		t.Errorf("config %+v, want %+v", m.Config, want)
	}
	// output.weight is present but equal to token_embd.weight: one copy
	if !m.SharedClassifier() {
		t.Error("output.weight equals token_embd.weight, so the classifier should be shared")
	}
	// a classifier that differs stays a matrix of its own
	sep := *m
	cls := core.NewMatF32(m.Config.VocabSize, m.Config.Dim, slices.Clone(m.Weights.TokenEmbedding.F))
	cls.F[7] += 0.5
	sep.Weights.Wcls = &cls
	data, _ := ggufFromModel(&sep, func(string, int, int) uint32 { return ggmlF32 }).bytes()
	if m2 := ggufRead(t, "sep.gguf", data); m2.SharedClassifier() || m2.Weights.Wcls.F[7] != cls.F[7] {
		t.Error("a classifier different from the token embedding was not kept separate")
	}

	// the legacy checkpoint holds exactly the same weights (and, read as
	// .bin, a shared classifier equal to output.weight); only SeqLen differs
	legacy, _ := ggufOpen(t, ggufTestLegacy)
	legacy.Config.SeqLen = m.Config.SeqLen
	if err := ggufSameWeights(m, legacy); err != nil {
		t.Fatalf("GGUF and .bin weights differ: %v", err)
	}

	// the vocabulary converted from GGUF metadata is tok512.bin's
	if err := AttachTokenizerFile(legacy, ggufTestTok); err != nil {
		t.Fatal(err)
	}
	if err := ggufSameTokenizer(m.Tokenizer, legacy.Tokenizer); err != nil {
		t.Fatalf("GGUF tokenizer differs from tok512.bin: %v", err)
	}
}

// ggufGenerate runs mote run's loop and returns what it prints to stdout.
func ggufGenerate(m *core.Model, prompt string, temp, topp float32, seed uint64, steps int) string {
	steps = m.Config.Steps(steps)
	g := m.NewGenerator(m.NewState(steps), core.NewSampler(m.Config.VocabSize, temp, topp, seed),
		m.Tokenizer.Encode(prompt, true, false), steps)
	var out strings.Builder
	for {
		_, text, ok := g.Next()
		if !ok {
			break
		}
		out.WriteString(text)
	}
	return out.String() + "\n"
}

func TestGGUFReferenceOutputs(t *testing.T) {
	m, _ := ggufOpen(t, ggufTestFile)
	for _, c := range []struct {
		file       string
		prompt     string
		temp, topp float32
		seed       uint64
		steps      int
	}{
		{"greedy_once_upon_a_time.txt", "Once upon a time", 0, 0.9, 1, 256},
		{"greedy_lily_and_ben.txt", "Lily and Ben", 0, 0.9, 1, 256},
		{"seed42_once_upon_a_time.txt", "Once upon a time", 1, 0.9, 42, 256},
		{"test_all_noprompt_n200.txt", "", 0, 0.9, 1, 200},
	} {
		want, err := os.ReadFile(filepath.Join(ggufTestRef, c.file))
		if err != nil {
			t.Fatal(err)
		}
		if got := ggufGenerate(m, c.prompt, c.temp, c.topp, c.seed, c.steps); got != string(want) {
			t.Errorf("%s: got\n%q\nwant\n%q", c.file, got, want)
		}
	}
}

// ggufLogits runs tokens through a model and returns every position's logits.
func ggufLogits(m *core.Model, tokens []int) [][]float32 {
	s := m.NewState(len(tokens))
	var all [][]float32
	for pos, tok := range tokens {
		all = append(all, slices.Clone(m.Forward(s, tok, pos)))
	}
	return all
}

// ggufRun is a 64-token greedy run of the fp32 model after "Once upon a time".
func ggufRun(m *core.Model) []int {
	tokens := m.Tokenizer.Encode("Once upon a time", true, false)
	s := m.NewState(64)
	for pos := 0; pos < 63; pos++ {
		logits := m.Forward(s, tokens[pos], pos)
		if pos+1 >= len(tokens) {
			tokens = append(tokens, core.Argmax(logits))
		}
	}
	return tokens
}

// ggufLogitError compares logits with the reference ref: largest absolute
// difference and NMSE.
func ggufLogitError(got, ref [][]float32) (maxAbs, nmse float64) {
	var se, ss float64
	for i := range ref {
		for j, r := range ref[i] {
			d := float64(got[i][j] - r)
			maxAbs = max(maxAbs, math.Abs(d))
			se += d * d
			ss += float64(r) * float64(r)
		}
	}
	return maxAbs, se / ss
}

func TestGGUFLogitsMatchLegacy(t *testing.T) {
	m, _ := ggufOpen(t, ggufTestFile)
	legacy, _, err := Open(ggufTestLegacy, ggufTestTok)
	if err != nil {
		t.Fatal(err)
	}
	tokens := ggufRun(legacy)
	a, b := ggufLogits(m, tokens), ggufLogits(legacy, tokens)
	for pos := range a {
		for j := range a[pos] {
			if math.Float32bits(a[pos][j]) != math.Float32bits(b[pos][j]) {
				t.Fatalf("pos %d logit %d: gguf %g, .bin %g", pos, j, a[pos][j], b[pos][j])
			}
		}
	}
}

func ggufReadFile(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(ggufTestFile)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The writer's F32 copy of the legacy model reads back identical, however the
// infos and data are ordered, with v2 or v3, any alignment, and with metadata
// and tensors mote skips.
func TestGGUFWriterRoundTrip(t *testing.T) {
	legacy, _, err := Open(ggufTestLegacy, ggufTestTok)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name    string
		version uint32
		align   uint32
		shuffle bool
		extras  bool
	}{
		{"v3", 3, 0, false, false},
		{"v2", 2, 0, false, false},
		{"align1", 3, 1, false, false},
		{"align64-shuffled", 3, 64, true, false},
		{"extras-shuffled", 3, 256, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := ggufFromModel(legacy, ggufAllF32)
			w.version = c.version
			if c.align != 0 {
				w.set("general.alignment", c.align)
			}
			if c.extras {
				ggufAddExtras(w)
			}
			if c.shuffle {
				rng.Shuffle(len(w.tensors), func(i, j int) { w.tensors[i], w.tensors[j] = w.tensors[j], w.tensors[i] })
				w.dataOrder = rng.Perm(len(w.tensors))
			}
			data, _ := w.bytes()
			m, info, err := ReadBytes("rt.gguf", data)
			if err != nil {
				t.Fatal(err)
			}
			if info.Version != int(c.version) {
				t.Errorf("version %d, want %d", info.Version, c.version)
			}
			if !m.SharedClassifier() {
				t.Error("no output.weight, so the classifier should be the token embedding")
			}
			if err := ggufSameWeights(m, legacy); err != nil {
				t.Fatal(err)
			}
			if err := ggufSameTokenizer(m.Tokenizer, legacy.Tokenizer); err != nil {
				t.Fatal(err)
			}
			// the same file, streamed one byte at a time with no known size
			m2, _, err := Read("rt.gguf", iotest.OneByteReader(bytes.NewReader(data)), -1)
			if err != nil {
				t.Fatal(err)
			}
			if err := ggufSameWeights(m2, legacy); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// ggufAddExtras adds metadata of every value type (nested arrays too) and
// tensors mote does not use, which it must skip.
func ggufAddExtras(w *ggufW) {
	w.kvs = slices.Insert(w.kvs, 1,
		ggufKVW{"x.u8", uint8(1)}, ggufKVW{"x.i8", int8(-1)}, ggufKVW{"x.u16", uint16(2)}, ggufKVW{"x.i16", int16(-2)},
		ggufKVW{"x.u32", uint32(3)}, ggufKVW{"x.i32", int32(-3)}, ggufKVW{"x.f32", float32(0.5)}, ggufKVW{"x.bool", true},
		ggufKVW{"x.str", "hello"}, ggufKVW{"x.u64", uint64(1 << 40)}, ggufKVW{"x.i64", int64(-1 << 40)}, ggufKVW{"x.f64", 0.25},
		ggufKVW{"x.arr.u8", ggufArr{ggufU8, []any{uint8(1), uint8(2), uint8(3)}}},
		ggufKVW{"x.arr.f64", ggufArr{ggufF64, []any{1.5, 2.5}}},
		ggufKVW{"x.arr.bool", ggufArr{ggufBool, []any{true, false}}},
		ggufKVW{"x.arr.str", []string{"a", "", "ccc"}},
		ggufKVW{"x.arr.empty", ggufArr{ggufI64, nil}},
		ggufKVW{"x.arr.nested", ggufArr{ggufArray, []any{
			ggufArr{ggufString, []any{"x", "yy"}},
			ggufArr{ggufArray, []any{ggufArr{ggufU16, []any{uint16(7)}}}},
			ggufArr{ggufI32, nil},
		}}},
		ggufKVW{"tokenizer.ggml.merges", []string{"a b", "c d"}},
	)
	w.tensors = append(w.tensors,
		ggufTW{name: "blk.0.attn_rot_embd.weight", ne: []uint64{4}, typ: ggmlF32, data: ggufEncF32([]float32{1, 2, 3, 4})},
		ggufTW{name: "some.q4.thing", ne: []uint64{64, 2}, typ: 2, data: make([]byte, 2*2*18)},
		ggufTW{name: "unknown.type", ne: []uint64{3}, typ: 99, data: []byte{1, 2, 3}},
		ggufTW{name: "empty", ne: []uint64{0, 5}, typ: ggmlF32},
	)
}

func TestGGUFF16(t *testing.T) {
	legacy, _, err := Open(ggufTestLegacy, ggufTestTok)
	if err != nil {
		t.Fatal(err)
	}
	w := ggufFromModel(legacy, func(string, int, int) uint32 { return ggmlF16 })
	data, _ := w.bytes()
	m := ggufRead(t, "f16.gguf", data)
	if m.Weights.TokenEmbedding.Type != core.F32 {
		t.Fatal("F16 tensors should load as F32")
	}
	// widening is exact: every loaded weight is the writer's half, widened
	check := func(name string, got, orig []float32) {
		for i := range orig {
			want := ggufHalfRef(ggufFloatToHalf(orig[i]))
			if math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Fatalf("%s[%d]: %g, want %g (from %g)", name, i, got[i], want, orig[i])
			}
		}
	}
	check("token_embd", m.Weights.TokenEmbedding.F, legacy.Weights.TokenEmbedding.F)
	check("rms_att", m.Weights.RmsAtt, legacy.Weights.RmsAtt)
	check("w2[4]", m.Weights.W2[4].F, legacy.Weights.W2[4].F)

	tokens := ggufRun(legacy)
	d, nmse := ggufLogitError(ggufLogits(m, tokens), ggufLogits(legacy, tokens))
	t.Logf("F16 logits vs fp32 over %d positions: max-abs %.4f, NMSE %.2g", len(tokens), d, nmse)
	if d > ggufF16MaxAbs || nmse > ggufF16NMSE {
		t.Errorf("F16 logits differ from fp32 by max-abs %g, NMSE %g; tolerances %g, %g", d, nmse, ggufF16MaxAbs, ggufF16NMSE)
	}
	if d == 0 {
		t.Error("F16 logits equal fp32's exactly: the weights were not rounded")
	}
}

// ggufQ8Types makes every matrix Q8_0 whose rows are a multiple of 32 long
// (ffn_down's 172 are not, so it stays F32, as llama.cpp would fall back).
func ggufQ8Types(name string, rows, cols int) uint32 {
	if rows > 1 && cols%32 == 0 {
		return ggmlQ8_0
	}
	return ggmlF32
}

func TestGGUFQ8_0(t *testing.T) {
	legacy, _, err := Open(ggufTestLegacy, ggufTestTok)
	if err != nil {
		t.Fatal(err)
	}
	w := ggufFromModel(legacy, ggufQ8Types)
	data, _ := w.bytes()
	m := ggufRead(t, "q8.gguf", data)
	for _, c := range []struct {
		name string
		got  *core.Mat
		orig *core.Mat
	}{
		{"token_embd", &m.Weights.TokenEmbedding, &legacy.Weights.TokenEmbedding},
		{"wq[0]", &m.Weights.Wq[0], &legacy.Weights.Wq[0]},
		{"wk[3]", &m.Weights.Wk[3], &legacy.Weights.Wk[3]},
		{"w1[4]", &m.Weights.W1[4], &legacy.Weights.W1[4]},
	} {
		q, d := ggufQuantQ8_0(c.orig.F)
		if c.got.Type != core.Q8 || c.got.GroupSize != 32 {
			t.Fatalf("%s: %v group %d, want q8 group 32", c.name, c.got.Type, c.got.GroupSize)
		}
		if !slices.Equal(c.got.Q, q) {
			t.Fatalf("%s: int8 values differ from the writer's", c.name)
		}
		for i := range d {
			if math.Float32bits(c.got.S[i]) != math.Float32bits(ggufHalfRef(d[i])) {
				t.Fatalf("%s: scale %d is %g, want %g", c.name, i, c.got.S[i], ggufHalfRef(d[i]))
			}
		}
	}
	if m.Weights.W2[0].Type != core.F32 {
		t.Error("ffn_down was written as F32")
	}
	if m.ActGroup != 32 {
		t.Errorf("activation group %d, want 32 (Q8_0 blocks, as llama.cpp)", m.ActGroup)
	}
	tokens := ggufRun(legacy)
	d, nmse := ggufLogitError(ggufLogits(m, tokens), ggufLogits(legacy, tokens))
	t.Logf("Q8_0 logits vs fp32 over %d positions: max-abs %.4f, NMSE %.2g", len(tokens), d, nmse)
	if d > ggufQ8_0MaxAbs || nmse > ggufQ8_0NMSE {
		t.Errorf("Q8_0 logits differ from fp32 by max-abs %g, NMSE %g; tolerances %g, %g", d, nmse, ggufQ8_0MaxAbs, ggufQ8_0NMSE)
	}

	// Q8_0 rows that are not whole blocks are not a ggml tensor
	w = ggufFromModel(legacy, ggufQ8Types)
	for i := range w.tensors {
		if strings.HasSuffix(w.tensors[i].name, "ffn_down.weight") {
			w.tensors[i].typ = ggmlQ8_0
			w.tensors[i].data = ggufEncQ8_0(legacy.Weights.W2[0].F) // 64*172 is a multiple of 32
		}
	}
	data, _ = w.bytes()
	_, _, err = ReadBytes("q8rows.gguf", data)
	ggufWantErr(t, err, ErrCorrupt, "blk.0.ffn_down.weight: row length 172 is not a multiple of Q8_0's block of 32")
}

// ggufTinyConfig is a small model's shape: dim 32 (Q8_0-able), two layers, GQA.
var ggufTinyConfig = core.Config{Dim: 32, HiddenDim: 64, NLayers: 2, NHeads: 4, NKVHeads: 2, VocabSize: 12,
	SeqLen: 16, NormEps: 1e-5, RopeTheta: 10000}

// ggufTiny is a random model of shape c (VocabSize 12) with a separate
// classifier and a small vocabulary.
func ggufTiny(seed uint64, c core.Config) *core.Model {
	rng := rand.New(rand.NewPCG(seed, 7))
	vals := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 0.3)
		}
		return x
	}
	mats := func(rows, cols int) []core.Mat {
		ms := make([]core.Mat, c.NLayers)
		for i := range ms {
			ms[i] = core.NewMatF32(rows, cols, vals(rows*cols))
		}
		return ms
	}
	m := &core.Model{Config: c}
	w := &m.Weights
	d, h, kv, l := c.Dim, c.HiddenDim, c.KVDim(), c.NLayers
	w.TokenEmbedding = core.NewMatF32(c.VocabSize, d, vals(c.VocabSize*d))
	cls := core.NewMatF32(c.VocabSize, d, vals(c.VocabSize*d))
	w.Wcls = &cls
	w.RmsAtt, w.RmsFFN, w.RmsFinal = vals(l*d), vals(l*d), vals(d)
	w.Wq, w.Wk, w.Wv, w.Wo = mats(d, d), mats(kv, d), mats(kv, d), mats(d, d)
	w.W1, w.W2, w.W3 = mats(h, d), mats(d, h), mats(h, d)
	vocab := []string{"<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", " a", "ab", " ab", "<0x41>", "é", "ba"}
	scores := vals(len(vocab))
	tok, err := core.NewTokenizer(vocab, scores, 1, 2)
	if err != nil {
		panic(err)
	}
	m.Tokenizer = tok
	return m
}

// ggufTinyTypes mixes every tensor type mote reads.
func ggufTinyTypes(name string, rows, cols int) uint32 {
	switch {
	case strings.Contains(name, "norm") && strings.HasPrefix(name, "blk.1"), name == "token_embd.weight":
		return ggmlF16
	case strings.Contains(name, "attn_q"), strings.Contains(name, "ffn_up"), name == "output.weight":
		return ggmlQ8_0
	}
	return ggmlF32
}

func ggufTinyFile(t testing.TB) (*ggufW, []byte, ggufLayout) {
	w := ggufFromModel(ggufTiny(1, ggufTinyConfig), ggufTinyTypes)
	ggufAddExtras(w)
	data, L := w.bytes()
	return w, data, L
}

func TestGGUFTinyMixedTypes(t *testing.T) {
	orig := ggufTiny(1, ggufTinyConfig)
	_, data, _ := ggufTinyFile(t)
	m := ggufRead(t, "tiny.gguf", data)
	wt := &m.Weights
	if wt.TokenEmbedding.Type != core.F32 || wt.Wq[1].Type != core.Q8 || wt.Wcls.Type != core.Q8 || wt.W2[0].Type != core.F32 {
		t.Fatalf("types: embd %v wq %v cls %v w2 %v", wt.TokenEmbedding.Type, wt.Wq[1].Type, wt.Wcls.Type, wt.W2[0].Type)
	}
	if m.SharedClassifier() {
		t.Fatal("output.weight present: the classifier is separate")
	}
	if !slices.Equal(wt.RmsAtt[:32], orig.Weights.RmsAtt[:32]) || !slices.Equal(wt.W2[1].F, orig.Weights.W2[1].F) {
		t.Error("F32 tensors changed")
	}
	for i, v := range orig.Weights.RmsFFN[32:] {
		if want := ggufHalfRef(ggufFloatToHalf(v)); wt.RmsFFN[32+i] != want {
			t.Fatalf("F16 rms_ffn[1][%d] = %g, want %g", i, wt.RmsFFN[32+i], want)
		}
	}
	if err := ggufSameTokenizer(m.Tokenizer, orig.Tokenizer); err != nil {
		t.Fatal(err)
	}
	// and it runs
	logits := m.Forward(m.NewState(4), 5, 0)
	for _, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("logit %g", v)
		}
	}
}

// ggufWantErr checks err is a *Error wrapping want whose message says what.
func ggufWantErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v (%s)", want, what)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *models.Error", err, err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %q", err, want)
	}
	if !strings.Contains(err.Error(), what) {
		t.Fatalf("error %q does not say %q", err, what)
	}
}

func ggufPut64(data []byte, off int, v uint64) { binary.LittleEndian.PutUint64(data[off:], v) }
func ggufPut32(data []byte, off int, v uint32) { binary.LittleEndian.PutUint32(data[off:], v) }

// ggufSentinels are every error a reader may wrap.
var ggufSentinels = []error{ErrBadMagic, ErrTruncated, ErrUnsupported, ErrLimit, ErrChecksum, ErrCorrupt}

// ggufCheckErr fails unless err is nil or a *Error wrapping a sentinel.
func ggufCheckErr(t testing.TB, err error, where string) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T) is not a *models.Error", where, err, err)
	}
	for _, s := range ggufSentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s: error %v wraps no sentinel", where, err)
}

func TestGGUFBadFiles(t *testing.T) {
	_, base, L := ggufTinyFile(t)
	if _, _, err := ReadBytes("tiny.gguf", base); err != nil {
		t.Fatal(err)
	}
	type edit func(w *ggufW)  // change the file before writing
	type patch func(d []byte) // change the written bytes
	rows := []struct {
		name  string
		edit  edit
		patch patch
		want  error
		what  string
	}{
		{"magic", nil, func(d []byte) { copy(d, "GGUX") }, ErrBadMagic, ""}, // then it is no GGUF at all
		{"v1", func(w *ggufW) { w.version = 1 }, nil, ErrUnsupported, "GGUF version 1"},
		{"v4", func(w *ggufW) { w.version = 4 }, nil, ErrUnsupported, "GGUF version 4"},
		{"big-endian", func(w *ggufW) { w.version = 3 << 24 }, nil, ErrUnsupported, "big-endian"},
		{"tensor count 2^60", nil, func(d []byte) { ggufPut64(d, L.tensorCount, 1<<60) }, ErrLimit, "tensor count 1152921504606846976"},
		{"tensor count beyond file", nil, func(d []byte) { ggufPut64(d, L.tensorCount, 60000) }, ErrTruncated, "tensor count 60000"},
		{"kv count 2^60", nil, func(d []byte) { ggufPut64(d, L.kvCount, 1<<60) }, ErrLimit, "key/value count"},
		{"key length 2^40", nil, func(d []byte) { ggufPut64(d, L.key["general.architecture"], 1<<40) }, ErrLimit, "metadata key: length 1099511627776"},
		{"string length 2^40", nil, func(d []byte) { ggufPut64(d, L.val["general.name"]+4, 1<<40) }, ErrLimit, "string of 1099511627776 bytes in key \"general.name\""},
		{"kept string length 2^40", nil, func(d []byte) { ggufPut64(d, L.val["general.architecture"]+4, 1<<40) }, ErrLimit, "value of key general.architecture: length 1099511627776"},
		{"token length 2^40", nil, func(d []byte) { ggufPut64(d, L.val["tokenizer.ggml.tokens"]+4+4+8, 1<<40) }, ErrLimit, "token: length 1099511627776"},
		{"array length 2^40", nil, func(d []byte) { ggufPut64(d, L.val["x.arr.u8"]+8, 1<<40) }, ErrLimit, "array length in key x.arr.u8 1099511627776"},
		{"tokens 2^40", nil, func(d []byte) { ggufPut64(d, L.val["tokenizer.ggml.tokens"]+8, 1<<40) }, ErrLimit, "element count of key tokenizer.ggml.tokens"},
		{"value type 13", nil, func(d []byte) { ggufPut32(d, L.val["x.u8"], 13) }, ErrCorrupt, "key \"x.u8\" has unknown value type 13"},
		{"element type 99", nil, func(d []byte) { ggufPut32(d, L.val["x.arr.u8"]+4, 99) }, ErrCorrupt, "unknown element type 99"},
		{"nested too deep", func(w *ggufW) {
			v := ggufArr{ggufU8, nil}
			for range 9 {
				v = ggufArr{ggufArray, []any{v}}
			}
			w.set("x.deep", v)
		}, nil, ErrLimit, "nests arrays more than 8 deep"},
		{"n_dims 9", nil, func(d []byte) { ggufPut32(d, L.nDims["blk.0.attn_k.weight"], 9) }, ErrLimit, "tensor blk.0.attn_k.weight has 9 dimensions"},
		{"n_dims 0", nil, func(d []byte) { ggufPut32(d, L.nDims["blk.0.attn_k.weight"], 0) }, ErrLimit, "has 0 dimensions"},
		{"dim 2^40", nil, func(d []byte) { ggufPut64(d, L.dims["blk.0.attn_v.weight"], 1<<40) }, ErrLimit, "tensor blk.0.attn_v.weight: dimension 0 is 1099511627776"},
		{"dims product", nil, func(d []byte) { ggufPut64(d, L.dims["blk.0.attn_v.weight"]+8, 1<<30) }, ErrLimit, "dimension 1 is 1073741824"},
		{"tensor name 2^40", nil, func(d []byte) { ggufPut64(d, L.info["blk.1.ffn_up.weight"], 1<<40) }, ErrLimit, "tensor name: length 1099511627776"},
		{"misaligned", nil, func(d []byte) {
			ggufPut64(d, L.offset["blk.1.attn_v.weight"], uint64(L.data["blk.1.attn_v.weight"]-L.dataStart+4))
		}, ErrCorrupt, "tensor blk.1.attn_v.weight: offset"},
		{"overlap", nil, func(d []byte) {
			ggufPut64(d, L.offset["blk.1.attn_v.weight"], uint64(L.data["blk.1.attn_k.weight"]-L.dataStart))
		}, ErrCorrupt, "overlaps tensor"},
		{"overlap with a skipped tensor", nil, func(d []byte) {
			ggufPut64(d, L.offset["blk.0.attn_rot_embd.weight"], uint64(L.data["blk.1.attn_k.weight"]-L.dataStart))
		}, ErrCorrupt, "overlaps tensor"},
		{"out of file", nil, func(d []byte) { ggufPut64(d, L.offset["blk.0.ffn_gate.weight"], 1<<30) }, ErrTruncated, "tensor blk.0.ffn_gate.weight ends at byte"},
		{"offset 2^63", nil, func(d []byte) { ggufPut64(d, L.offset["blk.0.ffn_gate.weight"], 1<<63) }, ErrCorrupt, "offset 9223372036854775808 is absurd"},
		{"skipped tensor out of file", nil, func(d []byte) { ggufPut64(d, L.offset["empty"], 1<<20) }, ErrTruncated, "tensor empty ends at byte"},
		{"type Q4_0", nil, func(d []byte) { ggufPut32(d, L.typ["blk.0.attn_q.weight"], 2) }, ErrUnsupported, "tensor blk.0.attn_q.weight is Q4_0"},
		{"type 77", nil, func(d []byte) { ggufPut32(d, L.typ["blk.0.attn_q.weight"], 77) }, ErrUnsupported, "is ggml type 77"},
		{"Q8_0 norm", func(w *ggufW) {
			n := w.tensor("output_norm.weight")
			n.typ, n.data = ggmlQ8_0, ggufEncQ8_0(make([]float32, 32))
		}, nil, ErrUnsupported, "tensor output_norm.weight is Q8_0 (mote reads norm vectors F32 or F16)"},
		{"architecture", func(w *ggufW) { w.set("general.architecture", "gpt2") }, nil, ErrUnsupported, `architecture "gpt2"`},
		{"architecture type", func(w *ggufW) { w.set("general.architecture", uint32(1)) }, nil, ErrCorrupt, "general.architecture is a uint32, want a string"},
		{"no architecture", func(w *ggufW) { w.del("general.architecture") }, nil, ErrCorrupt, "missing metadata key general.architecture"},
		{"tokenizer model", func(w *ggufW) { w.set("tokenizer.ggml.model", "gpt2") }, nil, ErrUnsupported, `tokenizer model "gpt2"`},
		{"no tokens", func(w *ggufW) { w.del("tokenizer.ggml.tokens") }, nil, ErrCorrupt, "missing metadata key tokenizer.ggml.tokens"},
		{"tokens not strings", func(w *ggufW) { w.set("tokenizer.ggml.tokens", make([]int32, 12)) }, nil, ErrCorrupt, "want an array of strings"},
		{"no scores", func(w *ggufW) { w.del("tokenizer.ggml.scores") }, nil, ErrCorrupt, "missing metadata key tokenizer.ggml.scores"},
		{"short scores", func(w *ggufW) { w.set("tokenizer.ggml.scores", make([]float32, 11)) }, nil, ErrCorrupt, "not an array of 12 float32"},
		{"short token types", func(w *ggufW) { w.set("tokenizer.ggml.token_type", make([]int32, 3)) }, nil, ErrCorrupt, "token_type is not an array of 12 int32"},
		{"bos", func(w *ggufW) { w.set("tokenizer.ggml.bos_token_id", uint32(12)) }, nil, ErrCorrupt, "bos 12"},
		{"duplicate key", func(w *ggufW) { w.kvs = append(w.kvs, ggufKVW{"llama.block_count", uint32(2)}) }, nil, ErrCorrupt, `key "llama.block_count" appears twice`},
		{"no block count", func(w *ggufW) { w.del("llama.block_count") }, nil, ErrCorrupt, "missing metadata key llama.block_count"},
		{"block count float", func(w *ggufW) { w.set("llama.block_count", float32(2)) }, nil, ErrCorrupt, "llama.block_count is a float32, want an integer"},
		{"negative heads", func(w *ggufW) { w.set("llama.attention.head_count", int32(-4)) }, nil, ErrCorrupt, "head_count is negative"},
		{"huge dim", func(w *ggufW) { w.set("llama.embedding_length", uint64(1<<40)) }, nil, ErrLimit, "llama.embedding_length = 1099511627776"},
		{"invalid config", func(w *ggufW) { w.set("llama.attention.head_count", uint32(6)) }, nil, ErrLimit, "n_heads 6"},
		{"zero eps", func(w *ggufW) { w.set("llama.attention.layer_norm_rms_epsilon", float32(0)) }, nil, ErrLimit, "norm epsilon"},
		{"rope dims", func(w *ggufW) { w.set("llama.rope.dimension_count", uint32(4)) }, nil, ErrUnsupported, "llama.rope.dimension_count 4 differs from the head size 8"},
		{"rope scaling", func(w *ggufW) { w.set("llama.rope.scaling.type", "yarn") }, nil, ErrUnsupported, `rope scaling "yarn"`},
		{"experts", func(w *ggufW) { w.set("llama.expert_count", uint32(8)) }, nil, ErrUnsupported, "mixture of 8 experts"},
		{"vocab size", func(w *ggufW) { w.set("llama.vocab_size", uint32(13)) }, nil, ErrCorrupt, "llama.vocab_size 13"},
		{"alignment 48", func(w *ggufW) { w.set("general.alignment", uint32(48)) }, nil, ErrCorrupt, "general.alignment 48 is not a power of two"},
		{"alignment 2^20", func(w *ggufW) { w.set("general.alignment", uint32(1<<20)) }, nil, ErrCorrupt, "general.alignment 1048576"},
		{"missing tensor", func(w *ggufW) {
			w.tensors = slices.DeleteFunc(w.tensors, func(t ggufTW) bool { return t.name == "blk.1.ffn_down.weight" })
		}, nil, ErrCorrupt, "missing tensor blk.1.ffn_down.weight"},
		{"duplicate tensor", func(w *ggufW) { w.tensors = append(w.tensors, *w.tensor("blk.1.attn_k.weight")) }, nil, ErrCorrupt, "tensor blk.1.attn_k.weight listed twice"},
		{"transposed", func(w *ggufW) { w.tensor("blk.0.ffn_gate.weight").ne = []uint64{64, 32} }, nil, ErrCorrupt, "tensor blk.0.ffn_gate.weight has shape [64 32], want [32 64]"},
		{"3d", func(w *ggufW) { w.tensor("blk.0.attn_q.weight").ne = []uint64{32, 32, 2} }, nil, ErrCorrupt, "has shape [32 32 2]"},
		{"embedding rows", func(w *ggufW) { w.tensor("token_embd.weight").ne = []uint64{32, 11} }, nil, ErrCorrupt, "token_embd.weight has shape [32 11], want [32 12]"},
		{"bias", func(w *ggufW) {
			w.tensors = append(w.tensors, ggufTW{name: "blk.1.attn_q.bias", ne: []uint64{32}, typ: ggmlF32, data: make([]byte, 128)})
		}, nil, ErrUnsupported, "tensor blk.1.attn_q.bias: mote's llama has no such weight"},
		{"layer beyond block count", func(w *ggufW) {
			w.tensors = append(w.tensors, ggufTW{name: "blk.2.attn_q.weight", ne: []uint64{32, 32}, typ: ggmlF32, data: make([]byte, 4096)})
		}, nil, ErrCorrupt, "tensor blk.2.attn_q.weight is for layer 2, but llama.block_count is 2"},
		{"rope freqs", func(w *ggufW) {
			w.tensors = append(w.tensors, ggufTW{name: "rope_freqs.weight", ne: []uint64{4}, typ: ggmlF32, data: make([]byte, 16)})
		}, nil, ErrUnsupported, "rope frequency factors"},
	}
	// only a known file size shows these faults: a stream of unknown size is
	// not read past the last tensor mote needs
	sizeOnly := map[string]bool{"skipped tensor out of file": true}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			data := base
			if r.edit != nil {
				w, _, _ := ggufTinyFile(t)
				r.edit(w)
				data, _ = w.bytes()
			} else {
				data = slices.Clone(base)
			}
			if r.patch != nil {
				r.patch(data)
			}
			_, _, err := ReadBytes("bad.gguf", data)
			ggufWantErr(t, err, r.want, r.what)
			if !strings.HasPrefix(err.Error(), "bad.gguf: offset ") {
				t.Errorf("error %q does not start with the file name and offset", err)
			}
			// a stream of unknown size fails too, without panicking
			_, _, err = Read("bad.gguf", bytes.NewReader(data), -1)
			if err == nil && !sizeOnly[r.name] {
				t.Errorf("unknown size: no error")
			}
			ggufCheckErr(t, err, "unknown size")
		})
	}
}

// ggufDataEnd is where the last tensor mote reads ends.
func ggufDataEnd(L ggufLayout, w *ggufW) int {
	end := 0
	for _, t := range w.tensors {
		end = max(end, L.data[t.name]+len(t.data))
	}
	return end
}

func TestGGUFTruncated(t *testing.T) {
	w, data, L := ggufTinyFile(t)
	end := ggufDataEnd(L, w)
	if end != len(data) {
		t.Fatalf("tiny file has %d bytes after its last tensor", len(data)-end)
	}
	last := w.tensor("blk.1.ffn_up.weight") // the last tensor mote reads
	needEnd := L.data[last.name] + len(last.data)
	// every length of the tiny file through its tensor infos and some way
	// into the data, then every 61st; known size and unknown
	var cuts int
	for n := 0; n < len(data); n++ {
		if n > L.dataStart+300 && n%61 != 0 && n != len(data)-1 {
			continue
		}
		cuts++
		_, _, err := ReadBytes("cut.gguf", data[:n])
		ggufWantErr(t, err, ErrTruncated, "")
		// a stream's end is only seen while mote still needs data
		_, _, err = Read("cut.gguf", bytes.NewReader(data[:n]), -1)
		if n < needEnd || err != nil {
			ggufWantErr(t, err, ErrTruncated, "")
		}
	}
	// the real file: every length through the metadata, then many others
	real := ggufReadFile(t)
	var lengths []int
	for n := 0; n < 14300; n++ {
		lengths = append(lengths, n)
	}
	for n := 14300; n < len(real); n += 997 {
		lengths = append(lengths, n, len(real)-1-(n-14300)/13)
	}
	for _, n := range lengths {
		_, _, err := ReadBytes("cut.gguf", real[:n])
		if err == nil {
			t.Fatalf("stories260K.gguf cut at %d: no error", n)
		}
		ggufWantErr(t, err, ErrTruncated, "")
	}
	t.Logf("%d truncations of the tiny file (x2), %d of stories260K.gguf", cuts, len(lengths))
}

// Bit flips anywhere in a valid file give a model that validates or an
// error wrapping a sentinel, never a panic.
func TestGGUFBitFlips(t *testing.T) {
	_, tiny, _ := ggufTinyFile(t)
	real := ggufReadFile(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3000; i++ {
		src := tiny
		if i%3 == 2 {
			src = real[:min(len(real), 20000)] // header region: the data is only floats
		}
		if i%3 == 2 && i%2 == 0 {
			src = real
		}
		data := slices.Clone(src)
		for range 1 + rng.IntN(3) {
			p := rng.IntN(min(len(data), 16000))
			data[p] ^= 1 << rng.IntN(8)
		}
		m, _, err := ReadBytes("flip.gguf", data)
		ggufCheckErr(t, err, fmt.Sprintf("flip %d", i))
		if err == nil {
			if verr := m.Validate(); verr != nil {
				t.Fatalf("flip %d: read a model that does not validate: %v", i, verr)
			}
		}
	}
}

func TestGGUFMagic(t *testing.T) {
	_, data, _ := ggufTinyFile(t)
	data = slices.Clone(data)
	copy(data, "GGUX")
	_, err := readGGUF(newBinReader("m.gguf", bytes.NewReader(data), int64(len(data))), &Info{})
	ggufWantErr(t, err, ErrBadMagic, `magic "GGUX" is not GGUF`)
}

// A reader that fails (not EOF) is reported as corrupt, with the cause.
func TestGGUFReadError(t *testing.T) {
	_, data, L := ggufTinyFile(t)
	boom := errors.New("disk on fire")
	cut := L.data["blk.1.ffn_gate.weight"] + 10
	r := io.MultiReader(bytes.NewReader(data[:cut]), iotest.ErrReader(boom))
	_, _, err := Read("x.gguf", r, int64(len(data)))
	ggufWantErr(t, err, ErrCorrupt, "disk on fire")
}

func BenchmarkReadGGUF(b *testing.B) {
	data := ggufReadFile(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ReadBytes("stories260K.gguf", data); err != nil {
			b.Fatal(err)
		}
	}
}
