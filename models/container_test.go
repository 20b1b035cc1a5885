package models

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/zstd"

	"mote/core"
)

// ctSharedDir is the folder of ground-truth files beside the repository.
var ctSharedDir = filepath.Join("..", "..", "shared")

func ctSharedPath(parts ...string) string {
	return filepath.Join(append([]string{ctSharedDir}, parts...)...)
}

// ctOpenShared loads a shared model with tok512.bin.
func ctOpenShared(t testing.TB, name string) *core.Model {
	t.Helper()
	m, _, err := Open(ctSharedPath("models", name), ctSharedPath("models", "tok512.bin"))
	if err != nil {
		t.Fatalf("ground truth: %v", err)
	}
	return m
}

var ctAllModes = []Compression{CompressNone, CompressZstd, CompressTensor}

// ctSynthOpts describe a tiny synthetic model.
type ctSynthOpts struct {
	typ    core.DType
	gs     int
	shared bool
	tok    int // ctTokNone, ctTokInt, ctTokFloat or ctTokBytes
	seed   uint64
	// heads, when not zero, gives n_heads, n_kv_heads and head_dim instead
	// of 2, 1 and dim/n_heads (a head-pruned or wide-headed model)
	heads [3]int
}

const (
	ctTokNone  = iota
	ctTokInt   // integer scores (with a -0.0), no byte tokens
	ctTokFloat // fractional scores
	ctTokBytes // <0x00>..<0xFF> present
)

// ctSynthModel builds a valid tiny model with random weights: odd hidden
// width (so Q8 rows end in a short group and Q4 rows in a padding nibble),
// grouped-query attention, two layers.
func ctSynthModel(t testing.TB, o ctSynthOpts) *core.Model {
	t.Helper()
	c := core.Config{Dim: 8, HiddenDim: 13, NLayers: 2, NHeads: 2, NKVHeads: 1, VocabSize: 16, SeqLen: 8}
	if o.tok == ctTokBytes {
		c.VocabSize = 262
	}
	if o.heads[0] != 0 {
		c.NHeads, c.NKVHeads, c.HeadDim = o.heads[0], o.heads[1], o.heads[2]
	}
	c.Defaults()
	r := rand.New(rand.NewPCG(o.seed, 7))
	mat := func(rows, cols int) core.Mat {
		f := make([]float32, rows*cols)
		for i := range f {
			f[i] = r.Float32()*2 - 1
		}
		m := core.NewMatF32(rows, cols, f)
		switch o.typ {
		case core.Q8:
			return core.QuantizeMatQ8(&m, o.gs)
		case core.Q4:
			p := make([]byte, rows*((cols+1)/2))
			for i := range p {
				p[i] = byte(r.UintN(256))
			}
			var cb [16]int8
			for i := range cb {
				cb[i] = int8(r.IntN(255) - 127)
			}
			s := make([]float32, rows*((cols+o.gs-1)/o.gs))
			for i := range s {
				s[i] = r.Float32() / 64
			}
			return core.NewMatQ4(rows, cols, o.gs, p, cb, s)
		}
		return m
	}
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1 + r.Float32()/4
		}
		return v
	}
	layers := func(rows, cols int) []core.Mat {
		ms := make([]core.Mat, c.NLayers)
		for i := range ms {
			ms[i] = mat(rows, cols)
		}
		return ms
	}
	d, h, kv, q, l := c.Dim, c.HiddenDim, c.KVDim(), c.QDim(), c.NLayers
	m := &core.Model{Config: c}
	w := &m.Weights
	w.TokenEmbedding = mat(c.VocabSize, d)
	w.RmsAtt, w.RmsFFN, w.RmsFinal = vec(l*d), vec(l*d), vec(d)
	w.Wq, w.Wk, w.Wv, w.Wo = layers(q, d), layers(kv, d), layers(kv, d), layers(d, q)
	w.W1, w.W2, w.W3 = layers(h, d), layers(d, h), layers(h, d)
	if o.shared {
		w.Wcls = &w.TokenEmbedding
	} else {
		cls := mat(c.VocabSize, d)
		w.Wcls = &cls
	}
	if o.typ != core.F32 {
		m.ActGroup = o.gs
	}
	if o.tok != ctTokNone {
		var vocab []string
		var scores []float32
		add := func(p string, s float32) { vocab, scores = append(vocab, p), append(scores, s) }
		add("<unk>", 0)
		add("\n<s>\n", 0)
		add("\n</s>\n", 0)
		if o.tok == ctTokBytes {
			for b := 0; b < 256; b++ {
				add(byteTokenText(byte(b)), 0)
			}
		}
		for _, p := range []string{" ", "a", "b", "c", " a", "ab", "bc", " ab", "abc", "é", "", "\x00z", "long piece with spaces"} {
			if len(vocab) == c.VocabSize {
				break
			}
			add(p, float32(-len(vocab)+3))
		}
		scores[3] = float32(math.Copysign(0, -1)) // SentencePiece's first merge: -0.0
		if o.tok == ctTokFloat {
			for i := range scores {
				scores[i] = r.Float32()*10 - 5
			}
		}
		tok, err := core.NewTokenizer(vocab, scores, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		m.Tokenizer = tok
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("synthetic model: %v", err)
	}
	return m
}

// ctSynthVariants covers the types, both classifier layouts and every
// tokenizer encoding.
func ctSynthVariants(t testing.TB) map[string]*core.Model {
	return map[string]*core.Model{
		"f32-shared-int":      ctSynthModel(t, ctSynthOpts{typ: core.F32, shared: true, tok: ctTokInt, seed: 1}),
		"f32-cls-float":       ctSynthModel(t, ctSynthOpts{typ: core.F32, tok: ctTokFloat, seed: 2}),
		"q8-shared-bytes":     ctSynthModel(t, ctSynthOpts{typ: core.Q8, gs: 4, shared: true, tok: ctTokBytes, seed: 3}),
		"q8-cls-none":         ctSynthModel(t, ctSynthOpts{typ: core.Q8, gs: 2, seed: 4}),
		"q4-cls-int":          ctSynthModel(t, ctSynthOpts{typ: core.Q4, gs: 4, tok: ctTokInt, seed: 5}),
		"q4-shared-float-g32": ctSynthModel(t, ctSynthOpts{typ: core.Q4, gs: 32, shared: true, tok: ctTokFloat, seed: 6}),
	}
}

func ctEncode(t testing.TB, m *core.Model, o WriteOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteContainer(&buf, m, o); err != nil {
		t.Fatalf("WriteContainer(%+v): %v", o, err)
	}
	return buf.Bytes()
}

// ctDiffModels describes the first difference between two models, comparing
// floats bit for bit; "" when they are identical.
func ctDiffModels(a, b *core.Model) string {
	if a.Config != b.Config {
		return fmt.Sprintf("config %+v vs %+v", a.Config, b.Config)
	}
	if a.ActGroup != b.ActGroup {
		return fmt.Sprintf("act group %d vs %d", a.ActGroup, b.ActGroup)
	}
	if a.SharedClassifier() != b.SharedClassifier() {
		return "shared classifier differs"
	}
	wa, wb := &a.Weights, &b.Weights
	for _, v := range []struct {
		name string
		x, y []float32
	}{{"rms_att", wa.RmsAtt, wb.RmsAtt}, {"rms_ffn", wa.RmsFFN, wb.RmsFFN}, {"rms_final", wa.RmsFinal, wb.RmsFinal}} {
		if d := ctDiffFloats(v.x, v.y); d != "" {
			return v.name + ": " + d
		}
	}
	mats := []struct {
		name string
		x, y []core.Mat
	}{{"token embedding", []core.Mat{wa.TokenEmbedding}, []core.Mat{wb.TokenEmbedding}},
		{"wq", wa.Wq, wb.Wq}, {"wk", wa.Wk, wb.Wk}, {"wv", wa.Wv, wb.Wv}, {"wo", wa.Wo, wb.Wo},
		{"w1", wa.W1, wb.W1}, {"w2", wa.W2, wb.W2}, {"w3", wa.W3, wb.W3},
		{"classifier", []core.Mat{*wa.Wcls}, []core.Mat{*wb.Wcls}}}
	for _, s := range mats {
		if len(s.x) != len(s.y) {
			return s.name + ": layer count"
		}
		for i := range s.x {
			if d := ctDiffMat(&s.x[i], &s.y[i]); d != "" {
				return fmt.Sprintf("%s[%d]: %s", s.name, i, d)
			}
		}
	}
	ta, tb := a.Tokenizer, b.Tokenizer
	switch {
	case (ta == nil) != (tb == nil):
		return "tokenizer presence"
	case ta == nil:
		return ""
	case !slices.Equal(ta.Vocab, tb.Vocab):
		return "vocab"
	case ta.BOS != tb.BOS || ta.EOS != tb.EOS:
		return "bos/eos"
	}
	if d := ctDiffFloats(ta.Scores, tb.Scores); d != "" {
		return "scores: " + d
	}
	return ""
}

func ctDiffMat(x, y *core.Mat) string {
	switch {
	case x.Type != y.Type || x.Rows != y.Rows || x.Cols != y.Cols || x.GroupSize != y.GroupSize:
		return fmt.Sprintf("%v %dx%d g%d vs %v %dx%d g%d", x.Type, x.Rows, x.Cols, x.GroupSize, y.Type, y.Rows, y.Cols, y.GroupSize)
	case !slices.Equal(x.Q, y.Q):
		return "q8 values"
	case !bytes.Equal(x.P, y.P):
		return "q4 indices"
	case x.Codebook != y.Codebook:
		return "codebook"
	}
	if d := ctDiffFloats(x.F, y.F); d != "" {
		return "values: " + d
	}
	if d := ctDiffFloats(x.S, y.S); d != "" {
		return "scales: " + d
	}
	return ""
}

func ctDiffFloats(x, y []float32) string {
	if len(x) != len(y) {
		return fmt.Sprintf("%d vs %d values", len(x), len(y))
	}
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return fmt.Sprintf("[%d] %g vs %g", i, x[i], y[i])
		}
	}
	return ""
}

// ctCheckFileErr asserts err is a *Error wrapping one of the sentinels.
func ctCheckFileErr(t testing.TB, err error, what string) {
	t.Helper()
	var fe *Error
	if err == nil {
		t.Fatalf("%s: read succeeded", what)
	}
	if !errors.As(err, &fe) {
		t.Fatalf("%s: %v is not a *models.Error", what, err)
	}
	for _, s := range ctSentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s: %v wraps no sentinel", what, err)
}

var ctSentinels = []error{ErrBadMagic, ErrTruncated, ErrUnsupported, ErrLimit, ErrChecksum, ErrCorrupt}

func TestRoundTripStories(t *testing.T) {
	for _, name := range []string{"stories260K.bin", "stories260K_q80_gs4.bin"} {
		src := ctOpenShared(t, name)
		for _, mode := range ctAllModes {
			for _, noCRC := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%v/nocrc=%v", name, mode, noCRC), func(t *testing.T) {
					data := ctEncode(t, src, WriteOptions{Compression: mode, NoTensorCRC: noCRC})
					m, info, err := ReadBytes("x.mote", data)
					if err != nil {
						t.Fatal(err)
					}
					if d := ctDiffModels(src, m); d != "" {
						t.Fatalf("round trip differs: %s", d)
					}
					if info.Format != FormatMote || info.Version != 1 || info.Compress != mode.String() ||
						info.Checksums != "verified" || info.FileBytes != int64(len(data)) {
						t.Fatalf("info %+v", info)
					}
				})
			}
		}
	}
}

func TestRoundTripSynthetic(t *testing.T) {
	for name, src := range ctSynthVariants(t) {
		for _, mode := range ctAllModes {
			for _, o := range []WriteOptions{{}, {NoTensorCRC: true}, {literalNames: true}} {
				o.Compression = mode
				data := ctEncode(t, src, o)
				m, _, err := ReadBytes(name, data)
				if err != nil {
					t.Fatalf("%s %+v: %v", name, o, err)
				}
				if d := ctDiffModels(src, m); d != "" {
					t.Fatalf("%s %+v: round trip differs: %s", name, o, d)
				}
				// the same bytes through a reader of unknown size, one byte at a time
				m, _, err = Read(name, iotest.OneByteReader(bytes.NewReader(data)), -1)
				if err != nil {
					t.Fatalf("%s %+v, streamed: %v", name, o, err)
				}
				if d := ctDiffModels(src, m); d != "" {
					t.Fatalf("%s %+v, streamed: round trip differs: %s", name, o, d)
				}
			}
		}
	}
}

// TestWriteIsDeterministic: converting the same model twice gives the same
// bytes (reproducible builds of dist/models).
func TestWriteIsDeterministic(t *testing.T) {
	m := ctOpenShared(t, "stories260K_q80_gs4.bin")
	for _, mode := range ctAllModes {
		if a, b := ctEncode(t, m, WriteOptions{Compression: mode}), ctEncode(t, m, WriteOptions{Compression: mode}); !bytes.Equal(a, b) {
			t.Errorf("%v: two writes differ", mode)
		}
	}
}

// TestLargeTensors exercises a payload and a tensor larger than the 8 MiB
// zstd window (multi-window streams, frames that are not single-segment).
func TestLargeTensors(t *testing.T) {
	c := core.Config{Dim: 288, HiddenDim: 64, NLayers: 1, NHeads: 6, NKVHeads: 6, VocabSize: 8192, SeqLen: 16}
	m, err := core.RandomModel(c, core.F32, 0, 9)
	if err != nil {
		t.Fatal(err)
	}
	// compressible but not trivially: a repeating ramp with a little noise
	r := rand.New(rand.NewPCG(3, 4))
	f := m.Weights.TokenEmbedding.F
	for i := range f {
		f[i] = float32(i%97)/97 + float32(r.IntN(4))/1024
	}
	for _, mode := range []Compression{CompressZstd, CompressTensor} {
		data := ctEncode(t, m, WriteOptions{Compression: mode, Level: 1})
		if int64(len(data)) >= int64(len(f))*4 {
			t.Fatalf("%v: %d bytes, the embedding did not compress", mode, len(data))
		}
		got, _, err := ReadBytes("big", data)
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if d := ctDiffModels(m, got); d != "" {
			t.Fatalf("%v: %s", mode, d)
		}
	}
}

func TestF16Options(t *testing.T) {
	for name, src := range ctSynthVariants(t) {
		for _, mode := range ctAllModes {
			data := ctEncode(t, src, WriteOptions{Compression: mode, F16: true, F16Scales: true})
			m, _, err := ReadBytes(name, data)
			if err != nil {
				t.Fatalf("%s %v: %v", name, mode, err)
			}
			// expected: the source with every stored half rounded
			want := ctSynthVariants(t)[name]
			round := func(v []float32) {
				for i := range v {
					v[i] = halfToFloat(floatToHalf(v[i]))
				}
			}
			w := &want.Weights
			all := []*core.Mat{&w.TokenEmbedding}
			if !want.SharedClassifier() {
				all = append(all, w.Wcls)
			}
			for _, set := range [][]core.Mat{w.Wq, w.Wk, w.Wv, w.Wo, w.W1, w.W2, w.W3} {
				for i := range set {
					all = append(all, &set[i])
				}
			}
			for _, mat := range all {
				round(mat.F)
				round(mat.S)
			}
			if d := ctDiffModels(want, m); d != "" {
				t.Fatalf("%s %v: %s", name, mode, d)
			}
			ci, err := ReadContainerInfo(name, bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			for _, ti := range ci.Tensors {
				isNorm := strings.HasSuffix(ti.Name, "norm")
				switch {
				case isNorm && ti.Type != TypeF32,
					!isNorm && ti.Type == TypeF32,
					ti.Type.grouped() && ti.Scale != ScaleF16:
					t.Fatalf("%s %v: tensor %+v", name, mode, ti)
				}
			}
		}
	}
	// halves cannot hold every float32 scale: the writer says so
	m := ctSynthModel(t, ctSynthOpts{typ: core.Q8, gs: 4, seed: 1})
	m.Weights.Wq[1].S[3] = 1e6
	if err := WriteContainer(io.Discard, m, WriteOptions{F16Scales: true}); err == nil || !strings.Contains(err.Error(), "blk.1.attn_q") {
		t.Fatalf("scale 1e6 as f16: %v", err)
	}
}

func TestHalfConversion(t *testing.T) {
	// every half widens and narrows back to itself (NaNs stay NaNs)
	for h := 0; h < 1<<16; h++ {
		f := halfToFloat(uint16(h))
		back := floatToHalf(f)
		if math.IsNaN(float64(f)) {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %04x -> %04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%04x -> %g -> %04x", h, f, back)
		}
	}
	// narrowing picks the nearest half, ties to even
	nearest := func(f float32) uint16 {
		best, bestD := uint16(0), math.Inf(1)
		for h := 0; h < 0x7c01; h++ { // finite magnitudes and +inf
			v := float64(halfToFloat(uint16(h)))
			d := math.Abs(v - math.Abs(float64(f)))
			if h == 0x7c00 { // infinity is nearest beyond the rounding boundary 65520
				if math.Abs(float64(f)) >= 65520 {
					d = 0
				} else {
					continue
				}
			}
			if d < bestD || d == bestD && h&1 == 0 {
				best, bestD = uint16(h), d
			}
		}
		if math.Signbit(float64(f)) {
			best |= 0x8000
		}
		return best
	}
	r := rand.New(rand.NewPCG(1, 2))
	cases := []float32{0, 1, -1, 65504, 65519.99, 65520, 1e9, 6.1035156e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08,
		1.0009765625 / 2, 1 + 1.0/2048, 1 + 3.0/2048, -2.5e-8, 1e-30}
	for i := 0; i < 300; i++ {
		cases = append(cases, math.Float32frombits(r.Uint32()&^0x40000000)) // magnitudes below 2
		cases = append(cases, halfToFloat(uint16(r.UintN(0x7c00)))+float32(r.NormFloat64())*1e-4)
	}
	for _, f := range cases {
		if math.IsNaN(float64(f)) {
			continue
		}
		if got, want := floatToHalf(f), nearest(f); got != want {
			t.Fatalf("floatToHalf(%g) = %04x, nearest is %04x", f, got, want)
		}
	}
}

// ctGenerate runs llama2.c's generate loop the way cli/run.go does and
// returns what it prints.
func ctGenerate(m *core.Model, prompt string, temp, topp float32, seed uint64, steps int) string {
	steps = m.Config.Steps(steps)
	s := m.NewState(steps)
	smp := core.NewSampler(m.Config.VocabSize, temp, topp, seed)
	g := m.NewGenerator(s, smp, m.Tokenizer.Encode(prompt, true, false), steps)
	var out strings.Builder
	for {
		_, text, ok := g.Next()
		if !ok {
			break
		}
		out.WriteString(text)
	}
	out.WriteString("\n")
	return out.String()
}

// TestReferenceOutputs converts stories260K.bin + tok512.bin and checks the
// container's model, opened without a tokenizer flag, against llama2.c's
// outputs byte for byte.
func TestReferenceOutputs(t *testing.T) {
	src := ctOpenShared(t, "stories260K.bin")
	cases := []struct {
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
	}
	dir := t.TempDir()
	for _, mode := range ctAllModes {
		path := filepath.Join(dir, "stories260K."+mode.String()+".mote")
		if err := os.WriteFile(path, ctEncode(t, src, WriteOptions{Compression: mode}), 0o644); err != nil {
			t.Fatal(err)
		}
		m, _, err := Open(path, "")
		if err != nil {
			t.Fatal(err)
		}
		if m.Tokenizer == nil {
			t.Fatal("the container lost its tokenizer")
		}
		for _, c := range cases {
			want, err := os.ReadFile(ctSharedPath("reference", c.file))
			if err != nil {
				t.Fatalf("ground truth: %v", err)
			}
			if got := ctGenerate(m, c.prompt, c.temp, c.topp, c.seed, c.steps); got != string(want) {
				t.Errorf("%v %s:\n got %q\nwant %q", mode, c.file, got, want)
			}
		}
	}
}

// TestQ8GreedyMatchesSource: the converted Q8 model generates what the
// llama2.c-format Q8 model generates.
func TestQ8GreedyMatchesSource(t *testing.T) {
	src := ctOpenShared(t, "stories260K_q80_gs4.bin")
	want := ctGenerate(src, "Once upon a time", 0, 0.9, 1, 256)
	if len(want) < 100 {
		t.Fatalf("source generated only %q", want)
	}
	for _, mode := range ctAllModes {
		m, _, err := ReadBytes("q8", ctEncode(t, src, WriteOptions{Compression: mode}))
		if err != nil {
			t.Fatal(err)
		}
		if got := ctGenerate(m, "Once upon a time", 0, 0.9, 1, 256); got != want {
			t.Errorf("%v:\n got %q\nwant %q", mode, got, want)
		}
	}
}

// TestTruncated cuts containers at every offset (tiny models) and at many
// offsets (stories260K), with the size known and unknown.
func TestTruncated(t *testing.T) {
	check := func(name string, data []byte, offsets []int) {
		for _, n := range offsets {
			_, _, err := ReadBytes(name, data[:n])
			ctCheckFileErr(t, err, fmt.Sprintf("%s cut at %d of %d", name, n, len(data)))
			if n >= 4 && !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s cut at %d: %v, want ErrTruncated", name, n, err)
			}
			_, _, err = Read(name, bytes.NewReader(data[:n]), -1)
			ctCheckFileErr(t, err, fmt.Sprintf("%s cut at %d of %d, size unknown", name, n, len(data)))
			_, err = ReadContainerInfo(name, bytes.NewReader(data[:n]), int64(n))
			if n < preambleSize+sectionHeaderSize+configSize && err == nil {
				t.Fatalf("%s cut at %d: header read succeeded", name, n)
			}
		}
	}
	// every offset of the preamble and headers, then a few hundred more
	spread := func(n, first, count int) []int {
		var offs []int
		for i := 0; i < n && i < first; i++ {
			offs = append(offs, i)
		}
		for i := first; i < n; i += max(1, (n-first)/count) {
			offs = append(offs, i)
		}
		return append(offs, n-1, n-sectionHeaderSize, n-sectionHeaderSize-1)
	}
	for name, m := range ctSynthVariants(t) {
		for _, mode := range ctAllModes {
			data := ctEncode(t, m, WriteOptions{Compression: mode})
			check(name+"/"+mode.String(), data, spread(len(data), 120, 250))
		}
	}
	for _, name := range []string{"stories260K.bin", "stories260K_q80_gs4.bin"} {
		src := ctOpenShared(t, name)
		for _, mode := range ctAllModes {
			data := ctEncode(t, src, WriteOptions{Compression: mode})
			check(name+"/"+mode.String(), data, spread(len(data), 8, 40))
		}
	}
}

// TestBitFlips flips a bit in every byte of tiny containers and in many
// bytes of stories260K's: every read fails with a sentinel, or (where zstd
// framing bits do not affect the content) yields the identical model.
func TestBitFlips(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	check := func(name string, src *core.Model, data []byte, offsets []int) {
		buf := make([]byte, len(data))
		for _, i := range offsets {
			copy(buf, data)
			buf[i] ^= 1 << r.UintN(8)
			for _, size := range []int64{int64(len(buf)), -1} {
				m, _, err := Read(name, bytes.NewReader(buf), size)
				if err == nil {
					if d := ctDiffModels(src, m); d != "" {
						t.Fatalf("%s: flip at %d (size %d) read a different model: %s", name, i, size, d)
					}
					continue
				}
				ctCheckFileErr(t, err, fmt.Sprintf("%s: flip at %d (size %d)", name, i, size))
			}
		}
	}
	// every byte of the headers, then a few hundred anywhere
	pick := func(n, first, count int) []int {
		var offs []int
		for i := 0; i < n && i < first; i++ {
			offs = append(offs, i)
		}
		for range count {
			offs = append(offs, r.IntN(n))
		}
		return offs
	}
	for name, m := range ctSynthVariants(t) {
		for _, mode := range ctAllModes {
			for _, noCRC := range []bool{false, true} {
				data := ctEncode(t, m, WriteOptions{Compression: mode, NoTensorCRC: noCRC})
				check(fmt.Sprintf("%s/%v/nocrc=%v", name, mode, noCRC), m, data, pick(len(data), 64, 120))
			}
		}
	}
	for _, name := range []string{"stories260K.bin", "stories260K_q80_gs4.bin"} {
		src := ctOpenShared(t, name)
		for _, mode := range ctAllModes {
			data := ctEncode(t, src, WriteOptions{Compression: mode})
			check(name+"/"+mode.String(), src, data, pick(len(data), 40, 40))
		}
	}
}

// TestFlipsDetectedByChecksums: in the uncompressed layout, a flip in any
// checksummed byte (preamble after the version, every section body) is
// reported as a checksum error, not as whatever the damaged bytes say.
func TestFlipsDetectedByChecksums(t *testing.T) {
	m := ctSynthModel(t, ctSynthOpts{typ: core.Q8, gs: 4, shared: true, tok: ctTokBytes, seed: 3})
	data := ctEncode(t, m, WriteOptions{})
	offs := []int{6, 7, 8, 12, 15, 16, 19}
	for _, s := range ctSplitSections(t, data) {
		for i := s.bodyAt; i < s.bodyAt+s.length; i++ {
			offs = append(offs, i)
		}
		offs = append(offs, s.at+9, s.at+12) // its CRC
	}
	for _, off := range offs {
		buf := slices.Clone(data)
		buf[off] ^= 1 << (off % 8)
		if _, _, err := ReadBytes("x", buf); !errors.Is(err, ErrChecksum) {
			t.Fatalf("flip at %d: %v", off, err)
		}
	}
	// in the tensor data the tensor CRC names the tensor
	secs := ctSplitSections(t, data)
	d := secs[len(secs)-2]
	buf := slices.Clone(data)
	buf[d.bodyAt+d.length-1] ^= 1
	_, _, err := ReadBytes("x", buf)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "tensor output_norm") {
		t.Errorf("flip in the last tensor: %v", err)
	}
}

type ctRawSection struct {
	kind       uint8
	at, bodyAt int
	length     int
	crc        uint32
}

// ctSplitSections parses an uncompressed container's section headers.
func ctSplitSections(t testing.TB, data []byte) []ctRawSection {
	var secs []ctRawSection
	for at := preambleSize; at < len(data); {
		s := ctRawSection{kind: data[at], at: at, bodyAt: at + sectionHeaderSize,
			length: int(binary.LittleEndian.Uint64(data[at+1:])), crc: binary.LittleEndian.Uint32(data[at+9:])}
		secs = append(secs, s)
		at = s.bodyAt + s.length
	}
	return secs
}

// ctFrame wraps a payload in a preamble (compressing it in mode 1) and
// returns the file.
func ctFrame(mode Compression, flags byte, payload []byte) []byte {
	if mode == CompressZstd {
		enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		payload = enc.EncodeAll(payload, nil)
	}
	var pre [preambleSize]byte
	copy(pre[:], moteMagic)
	binary.LittleEndian.PutUint16(pre[4:], ContainerVersion)
	pre[6], pre[7] = byte(mode), flags
	binary.LittleEndian.PutUint64(pre[8:], uint64(len(payload)))
	binary.LittleEndian.PutUint32(pre[16:], crc32.Checksum(pre[:16], castagnoli))
	return append(pre[:], payload...)
}

// ctSection lays out one section with a correct CRC.
func ctSection(kind uint8, length int64, body []byte) []byte {
	h := make([]byte, sectionHeaderSize, sectionHeaderSize+len(body))
	putSectionHeader(h, kind, length)
	crc := crc32.Update(crc32.Checksum(h[:9], castagnoli), castagnoli, body)
	binary.LittleEndian.PutUint32(h[9:], crc)
	return append(h, body...)
}

// dirSays makes the directory say something else about tensor i than what
// the data section will hold.
func dirSays(cw *containerWriter, i int, change func(t *outTensor)) {
	keep := cw.tensors[i]
	change(&cw.tensors[i])
	cw.dir = cw.encodeDirectory()
	cw.tensors[i] = keep
}

// ctTamper builds a container from a writer whose parts a test has changed;
// the sections' CRCs are made right, so that what is tested is the check
// behind them.
func ctTamper(t testing.TB, m *core.Model, o WriteOptions, change func(cw *containerWriter)) []byte {
	t.Helper()
	cw, err := newContainerWriter(m, o)
	if err != nil {
		t.Fatal(err)
	}
	change(cw)
	var buf bytes.Buffer
	if err := cw.write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRejects(t *testing.T) {
	m := ctSynthModel(t, ctSynthOpts{typ: core.Q8, gs: 4, tok: ctTokInt, seed: 8})
	good := ctEncode(t, m, WriteOptions{})
	secs := ctSplitSections(t, good)
	cfgBody := good[secs[0].bodyAt : secs[0].bodyAt+secs[0].length]
	tokBody := good[secs[1].bodyAt : secs[1].bodyAt+secs[1].length]
	dirBody := good[secs[2].bodyAt : secs[2].bodyAt+secs[2].length]
	dataSec := good[secs[3].at : secs[3].bodyAt+secs[3].length]
	endSec := ctSection(secEnd, 0, nil)
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	patchU32 := func(b []byte, off int, v uint32) []byte {
		b = slices.Clone(b)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	rePre := func(f func(pre []byte)) []byte {
		b := slices.Clone(good)
		f(b)
		binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
		return b
	}
	payload := func(cfg, tok, dir []byte) []byte {
		return cat(ctSection(secConfig, int64(len(cfg)), cfg), ctSection(secTokenizer, int64(len(tok)), tok),
			ctSection(secDirectory, int64(len(dir)), dir), dataSec, endSec)
	}
	bigDir := func(count uint64) []byte { return binary.AppendUvarint(nil, count) }
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"wrong magic", append([]byte("MOTF"), good[4:]...), ErrBadMagic},
		{"version 2", rePre(func(b []byte) { b[4] = 2 }), ErrUnsupported},
		{"compression 3", rePre(func(b []byte) { b[6] = 3 }), ErrUnsupported},
		{"unknown flag", rePre(func(b []byte) { b[7] |= 4 }), ErrUnsupported},
		{"preamble CRC", append(slices.Clone(good[:16]), append([]byte{1, 2, 3, 4}, good[20:]...)...), ErrChecksum},
		{"payload 2^60", rePre(func(b []byte) { binary.LittleEndian.PutUint64(b[8:], 1<<60) }), ErrLimit},
		{"payload longer than file", rePre(func(b []byte) { binary.LittleEndian.PutUint64(b[8:], uint64(len(good))) }), ErrTruncated},
		{"payload shorter than file", rePre(func(b []byte) { binary.LittleEndian.PutUint64(b[8:], uint64(len(good)-preambleSize-1)) }), ErrCorrupt},
		{"trailing garbage", ctFrame(CompressNone, 1, cat(payload(cfgBody, tokBody, dirBody), []byte{0})), ErrCorrupt},
		{"dim 2^31-1", ctFrame(CompressNone, 1, payload(patchU32(cfgBody, 0, math.MaxInt32), tokBody, dirBody)), ErrLimit},
		{"dim 2^32-1", ctFrame(CompressNone, 1, payload(patchU32(cfgBody, 0, math.MaxUint32), tokBody, dirBody)), ErrLimit},
		{"layers 2^20", ctFrame(CompressNone, 1, payload(patchU32(cfgBody, 8, 1<<20), tokBody, dirBody)), ErrLimit},
		{"act group 2^30", ctFrame(CompressNone, 1, payload(patchU32(cfgBody, 36, 1<<30), tokBody, dirBody)), ErrLimit},
		{"config flags", ctFrame(CompressNone, 1, payload(append(slices.Clone(cfgBody[:40]), 0x82), tokBody, dirBody)), ErrUnsupported},
		{"config too long", ctFrame(CompressNone, 1, payload(append(slices.Clone(cfgBody), 0), tokBody, dirBody)), ErrCorrupt},
		{"section 2^40 bytes", ctFrame(CompressNone, 1, cat(ctSection(secConfig, 1<<40, cfgBody))), ErrTruncated},
		{"tokens 2^30", ctFrame(CompressNone, 1, payload(cfgBody, patchU32(tokBody, 0, 1<<30), dirBody)), ErrCorrupt},
		{"bos outside", ctFrame(CompressNone, 1, payload(cfgBody, patchU32(tokBody, 4, 16), dirBody)), ErrCorrupt},
		{"byte tokens outside", ctFrame(CompressNone, 1, payload(cfgBody, patchU32(tokBody, 12, 0), dirBody)), ErrCorrupt},
		{"score coding 9", ctFrame(CompressNone, 1, payload(cfgBody, append(slices.Clone(tokBody[:16]), append([]byte{9}, tokBody[17:]...)...), dirBody)), ErrUnsupported},
		{"piece 2^40 bytes", ctFrame(CompressNone, 1, payload(cfgBody, slices.Concat(tokBody[:17], binary.AppendUvarint(nil, 1<<40), tokBody[18:]), dirBody)), ErrLimit},
		{"varint overflow", ctFrame(CompressNone, 1, payload(cfgBody, slices.Concat(tokBody[:17], bytes.Repeat([]byte{0xff}, 11), tokBody[28:]), dirBody)), ErrCorrupt},
		{"tensor count 2^60", ctFrame(CompressNone, 1, payload(cfgBody, tokBody, bigDir(1<<60))), ErrLimit},
		{"tensor count 3", ctFrame(CompressNone, 1, payload(cfgBody, tokBody, bigDir(3))), ErrCorrupt},
		{"no config", ctFrame(CompressNone, 1, cat(ctSection(secTokenizer, int64(len(tokBody)), tokBody), endSec)), ErrCorrupt},
		{"two configs", ctFrame(CompressNone, 1, cat(ctSection(secConfig, int64(len(cfgBody)), cfgBody), ctSection(secConfig, int64(len(cfgBody)), cfgBody))), ErrCorrupt},
		{"tokenizer after directory", ctFrame(CompressNone, 1, cat(ctSection(secConfig, int64(len(cfgBody)), cfgBody),
			ctSection(secDirectory, int64(len(dirBody)), dirBody), ctSection(secTokenizer, int64(len(tokBody)), tokBody), dataSec, endSec)), ErrCorrupt},
		{"no data", ctFrame(CompressNone, 1, cat(ctSection(secConfig, int64(len(cfgBody)), cfgBody),
			ctSection(secDirectory, int64(len(dirBody)), dirBody), ctSection(200, int64(len(dataSec)), dataSec), endSec)), ErrCorrupt},
		{"critical kind 9", ctFrame(CompressNone, 1, cat(ctSection(secConfig, int64(len(cfgBody)), cfgBody), ctSection(9, 0, nil))), ErrUnsupported},
		{"end with body", ctFrame(CompressNone, 1, cat(payload(cfgBody, tokBody, dirBody)[:len(payload(cfgBody, tokBody, dirBody))-sectionHeaderSize], ctSection(secEnd, 1, []byte{0}))), ErrCorrupt},
		{"nothing after directory", ctFrame(CompressNone, 1, cat(ctSection(secConfig, int64(len(cfgBody)), cfgBody), ctSection(secDirectory, int64(len(dirBody)), dirBody))), ErrTruncated},
		{"wrong shape", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.tensors[1].cols = 9; cw.layout() }), ErrCorrupt},
		{"group size 2^40", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.tensors[2].gs = 1 << 40; cw.layout() }), ErrLimit},
		{"group size 0", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.tensors[2].gs = 0; cw.layout() }), ErrCorrupt},
		{"reserved type 6", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { dirSays(cw, 2, func(t *outTensor) { t.typ = 6 }) }), ErrUnsupported},
		{"scale type 3", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.tensors[2].scale = 3; cw.layout() }), ErrUnsupported},
		{"q8 norm", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.tensors[1].typ = TypeQ8; cw.tensors[1].gs = 4; cw.layout() }), ErrUnsupported},
		{"stored size wrong", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { dirSays(cw, 2, func(t *outTensor) { t.raw++ }) }), ErrCorrupt},
		{"stored size wrong, tensor", ctTamper(t, m, WriteOptions{Compression: CompressTensor}, func(cw *containerWriter) {
			dirSays(cw, 2, func(t *outTensor) { t.frame, t.raw = nil, t.raw+1 })
		}), ErrCorrupt},
		{"duplicate tensor", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.tensors[3].slot = cw.tensors[2].slot; cw.layout() }), ErrCorrupt},
		{"layer 5", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.tensors[3].layer = 5; cw.layout() }), ErrLimit},
		{"output when shared", ctTamper(t, ctSynthModel(t, ctSynthOpts{shared: true, seed: 2}), WriteOptions{}, func(cw *containerWriter) {
			cw.tensors[0].code = nameOutput
			cw.layout()
		}), ErrCorrupt},
		{"unknown literal name", ctTamper(t, m, WriteOptions{literalNames: true}, func(cw *containerWriter) {
			cw.dir = bytes.Replace(cw.dir, []byte("token_embd"), []byte("token_embx"), 1)
		}), ErrUnsupported},
		{"name code 30", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.dir[1] = 30 }), ErrUnsupported},
		{"data CRC", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.dataCRC++ }), ErrChecksum},
		{"tensor CRC", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.tensors[4].crc++; cw.layout() }), ErrChecksum},
		{"tensor CRC, zstd", ctTamper(t, m, WriteOptions{Compression: CompressZstd}, func(cw *containerWriter) { cw.tensors[4].crc++; cw.layout() }), ErrChecksum},
		{"tensor CRC, tensor", ctTamper(t, m, WriteOptions{Compression: CompressTensor}, func(cw *containerWriter) { cw.tensors[0].crc++; cw.layout() }), ErrChecksum},
		{"directory beyond file", ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.dataLen += 1 << 30 }), ErrTruncated},
		{"data section longer than tensors", ctFrame(CompressZstd, 1, cat(ctSection(secConfig, int64(len(cfgBody)), cfgBody),
			ctSection(secDirectory, int64(len(dirBody)), dirBody), ctSection(secData, int64(len(dataSec)-12), append(slices.Clone(dataSec[sectionHeaderSize:]), 0)), endSec)), ErrCorrupt},
	}
	for _, c := range cases {
		_, _, err := ReadBytes(c.name, c.data)
		ctCheckFileErr(t, err, c.name)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// an unknown ancillary section is skipped, wherever it is
	anc := ctSection(200, 5, []byte("hello"))
	for _, data := range [][]byte{
		ctFrame(CompressNone, 1, cat(ctSection(secConfig, int64(len(cfgBody)), cfgBody), anc, ctSection(secTokenizer, int64(len(tokBody)), tokBody),
			ctSection(secDirectory, int64(len(dirBody)), dirBody), anc, dataSec, anc, endSec)),
		ctFrame(CompressZstd, 1, cat(payload(cfgBody, tokBody, dirBody)[:len(payload(cfgBody, tokBody, dirBody))-sectionHeaderSize], anc, endSec)),
	} {
		got, _, err := ReadBytes("ancillary", data)
		if err != nil {
			t.Fatalf("ancillary section: %v", err)
		}
		if d := ctDiffModels(m, got); d != "" {
			t.Fatalf("ancillary section: %s", d)
		}
	}
	// ... but not its CRC
	bad := ctSection(200, 5, []byte("hello"))
	bad[sectionHeaderSize] = 'j'
	_, _, err := ReadBytes("bad ancillary", ctFrame(CompressNone, 1, cat(ctSection(secConfig, int64(len(cfgBody)), cfgBody), bad)))
	if !errors.Is(err, ErrChecksum) {
		t.Errorf("damaged ancillary section: %v", err)
	}
}

// TestErrorsSayWhere: errors name the file and, in zstd mode, that the
// offset is within the decompressed payload.
func TestErrorsSayWhere(t *testing.T) {
	m := ctSynthModel(t, ctSynthOpts{seed: 1, tok: ctTokInt})
	data := ctTamper(t, m, WriteOptions{Compression: CompressZstd}, func(cw *containerWriter) { cw.tensors[4].crc++; cw.layout() })
	_, _, err := ReadBytes("model.mote", data)
	var fe *Error
	if !errors.As(err, &fe) || fe.File != "model.mote" || !strings.Contains(err.Error(), "decompressed payload") ||
		!strings.Contains(err.Error(), "blk.0.attn_v") {
		t.Fatalf("error %v", err)
	}
	data = ctTamper(t, m, WriteOptions{}, func(cw *containerWriter) { cw.tensors[4].crc++; cw.layout() })
	_, _, err = ReadBytes("model.mote", data)
	if !errors.As(err, &fe) || strings.Contains(err.Error(), "decompressed") || fe.Offset <= preambleSize || fe.Offset >= int64(len(data)) {
		t.Fatalf("error %v", err)
	}
}

// ctAllocDuring reports the bytes allocated while f runs.
func ctAllocDuring(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestZstdBombs: small files that claim, or expand to, huge sizes fail
// without allocating or decompressing much.
func TestZstdBombs(t *testing.T) {
	// a 7B-shaped config: every tensor fits the allocation limit, all of
	// them together are 27 GB
	huge := &core.Model{Config: core.Config{Dim: 4096, HiddenDim: 11008, NLayers: 32, NHeads: 32, NKVHeads: 32, VocabSize: 32000, SeqLen: 2048}}
	huge.Config.Defaults()
	if err := huge.Config.Validate(); err != nil {
		t.Fatal(err)
	}
	hugeSlots := modelSlots(&huge.Config, false)
	hugeDir := func(stored int) []byte {
		cw := &containerWriter{}
		for _, s := range hugeSlots {
			ot := outTensor{slot: s, typ: TypeF32, raw: rawSize(TypeF32, s.rows, s.cols, 0, 0, 0, false)}
			if stored > 0 {
				ot.frame = make([]byte, stored)
			}
			cw.tensors = append(cw.tensors, ot)
		}
		return cw.encodeDirectory()
	}
	cfg := ctSection(secConfig, configSize, encodeConfig(huge))
	dir0, dir20 := ctSection(secDirectory, int64(len(hugeDir(0))), hugeDir(0)), ctSection(secDirectory, int64(len(hugeDir(20))), hugeDir(20))
	data20 := make([]byte, 20*len(hugeSlots))

	small := ctSynthModel(t, ctSynthOpts{typ: core.Q8, gs: 4, tok: ctTokInt, seed: 8})
	smallPayload := ctEncode(t, small, WriteOptions{})[preambleSize:]
	endAt := len(smallPayload) - sectionHeaderSize
	zeros := make([]byte, 64<<20)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	// frame headers that claim a 1 GiB window, or a 2^40-byte single segment
	winBomb := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xc0, (30 - 10) << 3, 0, 0, 0, 0, 0, 1, 0, 0}
	segBomb := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"huge model, zstd", ctFrame(CompressZstd, 1, slices.Concat(cfg, dir0, ctSection(secData, 27<<30, nil))), ErrLimit},
		{"huge model, none", ctFrame(CompressNone, 1, slices.Concat(cfg, dir0, ctSection(secData, 27<<30, nil))), ErrTruncated},
		{"huge model, tensor", ctFrame(CompressTensor, 1, slices.Concat(cfg, dir20, ctSection(secData, int64(len(data20)), data20),
			ctSection(secEnd, 0, nil))), ErrLimit},
		// 64 MiB of zeros after the end section, a few kB compressed
		{"zeros after the end", ctFramed(CompressZstd, 1, enc.EncodeAll(slices.Concat(smallPayload, zeros), nil)), ErrCorrupt},
		{"ancillary section of 1 GiB", ctFramed(CompressZstd, 1, enc.EncodeAll(slices.Concat(smallPayload[:endAt],
			ctSection(200, 1<<30, nil), zeros), nil)), ErrLimit},
		{"1 GiB window", ctFramed(CompressZstd, 1, winBomb), ErrLimit},
		{"2^40-byte segment", ctFramed(CompressZstd, 1, segBomb), ErrLimit},
	}
	for _, c := range cases {
		var err error
		n := ctAllocDuring(func() { _, _, err = ReadBytes(c.name, c.data) })
		ctCheckFileErr(t, err, c.name)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if n > 16<<20 {
			t.Errorf("%s: allocated %d bytes (file of %d)", c.name, n, len(c.data))
		}
	}

	// per-tensor mode: frames (with right CRCs) that expand beyond their
	// tensor, claim a 1 GiB single segment, or end early
	big := ctSynthModel(t, ctSynthOpts{typ: core.Q8, gs: 4, tok: ctTokBytes, seed: 8}) // classifier: 4,192 raw bytes
	for _, c := range []struct {
		name  string
		frame []byte
		want  error
	}{
		{"frame expands", enc.EncodeAll(make([]byte, 32<<20), nil), ErrCorrupt},
		{"frame claims 1 GiB", segBomb, ErrLimit},
		{"frame too short", enc.EncodeAll(make([]byte, 10), nil), ErrTruncated},
	} {
		data := ctTamper(t, big, WriteOptions{Compression: CompressTensor}, func(cw *containerWriter) {
			ten := &cw.tensors[len(cw.tensors)-1]
			ten.frame = c.frame
			ten.crc = crc32.Checksum(c.frame, castagnoli)
			cw.layout()
		})
		var err error
		n := ctAllocDuring(func() { _, _, err = ReadBytes(c.name, data) })
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "decompressed zstd frame of tensor output") {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if n > 16<<20 {
			t.Errorf("%s: allocated %d bytes", c.name, n)
		}
	}
}

// ctFramed is ctFrame for an already compressed payload.
func ctFramed(mode Compression, flags byte, stored []byte) []byte {
	f := ctFrame(CompressNone, flags, stored)
	f[6] = byte(mode)
	binary.LittleEndian.PutUint32(f[16:], crc32.Checksum(f[:16], castagnoli))
	return f
}

func TestReadContainerInfo(t *testing.T) {
	src := ctOpenShared(t, "stories260K_q80_gs4.bin")
	for _, mode := range ctAllModes {
		data := ctEncode(t, src, WriteOptions{Compression: mode, F16Scales: true})
		ci, err := ReadContainerInfo("x", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if ci.Version != 1 || ci.Compression != mode || !ci.TensorCRCs || ci.Config != src.Config || !ci.SharedClassifier ||
			ci.ActGroup != 4 || ci.Tokens != 512 || len(ci.Tensors) != 47 || ci.PayloadBytes != int64(len(data)-preambleSize) {
			t.Fatalf("%v: %+v", mode, ci)
		}
		var q8, f32 int
		var stored int64
		for _, ti := range ci.Tensors {
			switch {
			case ti.Type == TypeQ8 && ti.GroupSize == 4 && ti.Scale == ScaleF16:
				q8++
			case ti.Type == TypeF32 && ti.Rows == 1 && ti.Cols == 64:
				f32++
			default:
				t.Errorf("tensor %+v", ti)
			}
			stored += ti.Stored
		}
		if q8 != 36 || f32 != 11 {
			t.Errorf("%v: %d q8, %d f32 tensors", mode, q8, f32)
		}
		if mode != CompressZstd && stored >= int64(len(data)) || mode == CompressTensor && stored >= 520160 {
			t.Errorf("%v: %d stored bytes in a file of %d", mode, stored, len(data))
		}
		kinds := []uint8{}
		for _, s := range ci.Sections {
			kinds = append(kinds, s.Kind)
		}
		if !slices.Equal(kinds, []uint8{secConfig, secTokenizer, secDirectory, secData}) {
			t.Errorf("sections %v", ci.Sections)
		}
	}
}

// TestDefaultSizes pins the size ordering the CLI default was chosen by:
// whole-payload zstd beats storing and per-tensor frames. (Per-tensor frames
// were within 0.5 % of it before fp32 matrices were byte-shuffled; with the
// shuffle, one stream finds more across tensors: 893,053 vs 932,398 bytes on
// stories260K, so the bound is 5 %.)
func TestDefaultSizes(t *testing.T) {
	for _, name := range []string{"stories260K.bin", "stories260K_q80_gs4.bin"} {
		src := ctOpenShared(t, name)
		none := len(ctEncode(t, src, WriteOptions{}))
		whole := len(ctEncode(t, src, WriteOptions{Compression: CompressZstd}))
		tensor := len(ctEncode(t, src, WriteOptions{Compression: CompressTensor}))
		weights := int(src.Config.NumWeights(true)*4) * map[bool]int{true: 1, false: 0}[name == "stories260K.bin"]
		t.Logf("%s: none %d, zstd %d, tensor %d", name, none, whole, tensor)
		if !(whole < none*95/100) || !(whole <= tensor) || float64(tensor-whole) > float64(whole)/20 {
			t.Errorf("%s: none %d, zstd %d, tensor %d", name, none, whole, tensor)
		}
		if weights > 0 && none-weights > 2100 { // tokenizer 1376 + a few hundred bytes
			t.Errorf("%s: %d bytes beyond the weights", name, none-weights)
		}
	}
}

// --- FORMAT.md against the code ---

func ctReadFormatDoc(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join("..", "FORMAT.md"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

// ctDocTable returns the data rows of the table after the marker comment.
func ctDocTable(t *testing.T, lines []string, marker string) [][]string {
	t.Helper()
	i := slices.Index(lines, "<!-- "+marker+" -->")
	if i < 0 {
		t.Fatalf("FORMAT.md has no %q table", marker)
	}
	for i++; i < len(lines) && !strings.HasPrefix(lines[i], "|"); i++ {
	}
	var rows [][]string
	for i += 2; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
		cells := strings.Split(strings.Trim(lines[i], "|"), "|")
		for j := range cells {
			cells[j] = strings.Trim(strings.TrimSpace(cells[j]), "`")
		}
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		t.Fatalf("FORMAT.md: empty %q table", marker)
	}
	return rows
}

func TestFormatFixedSizes(t *testing.T) {
	doc := ctReadFormatDoc(t)
	for marker, size := range map[string]int{"fixed: preamble": preambleSize, "fixed: section header": sectionHeaderSize,
		"fixed: config": configSize, "fixed: config head_dim": configHeadDimSize, "fixed: tokenizer header": tokHeaderSize} {
		off := 0
		for _, r := range ctDocTable(t, doc, marker) {
			o, err1 := strconv.Atoi(r[0])
			s, err2 := strconv.Atoi(r[1])
			if err1 != nil || err2 != nil || o != off {
				t.Errorf("%s: row %v does not start at offset %d", marker, r, off)
			}
			typeSize := map[string]int{"u8": 1, "u16": 2, "u32": 4, "u64": 8, "f32": 4}
			if ts, ok := typeSize[r[2]]; ok && ts != s {
				t.Errorf("%s: %s is %s but %d bytes", marker, r[3], r[2], s)
			}
			off += s
		}
		if off != size {
			t.Errorf("%s: FORMAT.md says %d bytes, the code %d", marker, off, size)
		}
	}
	// and the writer produces what the tables say
	m := ctSynthModel(t, ctSynthOpts{typ: core.Q8, gs: 4, tok: ctTokBytes, seed: 1})
	data := ctEncode(t, m, WriteOptions{})
	secs := ctSplitSections(t, data)
	tok := data[secs[1].bodyAt:]
	switch {
	case string(data[:4]) != "MOTE" || binary.LittleEndian.Uint16(data[4:]) != 1 || data[6] != 0 || data[7] != 1:
		t.Errorf("preamble % x", data[:8])
	case binary.LittleEndian.Uint64(data[8:]) != uint64(len(data)-preambleSize):
		t.Errorf("payload length field")
	case secs[0].kind != secConfig || secs[0].length != configSize || secs[len(secs)-1].kind != secEnd:
		t.Errorf("sections %+v", secs)
	case binary.LittleEndian.Uint32(data[secs[0].bodyAt+20:]) != 262 || data[secs[0].bodyAt+40] != 0 ||
		binary.LittleEndian.Uint32(data[secs[0].bodyAt+36:]) != 4:
		t.Errorf("config body % x", data[secs[0].bodyAt:secs[0].bodyAt+configSize])
	case binary.LittleEndian.Uint32(tok) != 262 || binary.LittleEndian.Uint32(tok[4:]) != 1 || binary.LittleEndian.Uint32(tok[8:]) != 2 ||
		binary.LittleEndian.Uint32(tok[12:]) != 3 || tok[16] != scoresInt || tok[17] != 5 || string(tok[18:23]) != "<unk>":
		t.Errorf("tokenizer body % x", tok[:24])
	case crc32.Checksum([]byte("123456789"), castagnoli) != 0xE3069283:
		t.Errorf("CRC-32C check value")
	}
}

func TestFormatCodeTables(t *testing.T) {
	doc := ctReadFormatDoc(t)
	check := func(marker string, known map[int]string) {
		rows := ctDocTable(t, doc, marker)
		seen := map[int]bool{}
		for _, r := range rows {
			code, err := strconv.Atoi(r[0])
			if err != nil {
				t.Errorf("%s: row %v", marker, r)
				continue
			}
			seen[code] = true
			if known[code] != r[1] {
				t.Errorf("%s: FORMAT.md says %d is %q, the code %q", marker, code, r[1], known[code])
			}
		}
		for code, name := range known {
			if !seen[code] {
				t.Errorf("%s: %d (%s) is not documented", marker, code, name)
			}
		}
	}
	kinds := map[int]string{}
	for k, n := range sectionNames {
		kinds[int(k)] = n
	}
	check("table: section kinds", kinds)
	types := map[int]string{}
	for k, n := range typeNames {
		types[int(k)] = n
	}
	check("table: tensor types", types)
	check("table: scale types", map[int]string{0: ScaleF32.String(), 1: ScaleF16.String(), 2: ScaleLog8.String()})
	comp := map[int]string{}
	for i, n := range compressionNames {
		comp[i] = n
	}
	check("table: compression", comp)
	names := map[int]string{}
	for c, n := range globalTensorNames {
		names[int(c)] = n
	}
	for i, n := range layerTensorNames {
		names[nameLayerFirst+i] = "blk.N." + n
	}
	check("table: tensor names", names)
}

// TestDirectoryOrderFree: a reader accepts the tensors in any order.
func TestDirectoryOrderFree(t *testing.T) {
	m := ctSynthModel(t, ctSynthOpts{typ: core.Q4, gs: 4, tok: ctTokInt, seed: 11})
	for _, mode := range ctAllModes {
		data := ctTamper(t, m, WriteOptions{Compression: mode}, func(cw *containerWriter) {
			slices.Reverse(cw.tensors)
			cw.layout()
		})
		got, _, err := ReadBytes("reversed", data)
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if d := ctDiffModels(m, got); d != "" {
			t.Fatalf("%v: %s", mode, d)
		}
	}
}

// TestOpenUsesTokenizerFlag: a tokenizer file given to Open replaces the
// container's own.
func TestOpenUsesTokenizerFlag(t *testing.T) {
	src := ctOpenShared(t, "stories260K.bin")
	src.Tokenizer = nil
	path := filepath.Join(t.TempDir(), "notok.mote")
	if err := os.WriteFile(path, ctEncode(t, src, WriteOptions{Compression: CompressZstd}), 0o644); err != nil {
		t.Fatal(err)
	}
	m, _, err := Open(path, "")
	if err != nil || m.Tokenizer != nil {
		t.Fatalf("no tokenizer: %v, %v", err, m.Tokenizer)
	}
	m, _, err = Open(path, ctSharedPath("models", "tok512.bin"))
	if err != nil || m.Tokenizer == nil || len(m.Tokenizer.Vocab) != 512 {
		t.Fatalf("with -z: %v", err)
	}
}

func BenchmarkReadContainer(b *testing.B) {
	src := ctOpenShared(b, "stories260K_q80_gs4.bin")
	for _, mode := range ctAllModes {
		data := ctEncode(b, src, WriteOptions{Compression: mode})
		b.Run(mode.String(), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Read("x", bufio.NewReader(bytes.NewReader(data)), int64(len(data))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fp32 matrices are byte-shuffled (f32s) in the compressed modes unless
// NoShuffle asks otherwise; either way they read back bit for bit, and the
// shuffled file is smaller.
func TestShuffledFloats(t *testing.T) {
	src := ctOpenShared(t, "stories260K.bin")
	sizes := map[bool]int{}
	for _, mode := range []Compression{CompressZstd, CompressTensor} {
		for _, noShuffle := range []bool{false, true} {
			b := ctEncode(t, src, WriteOptions{Compression: mode, NoShuffle: noShuffle})
			ci, err := ReadContainerInfo("x.mote", bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			want := TypeF32S
			if noShuffle {
				want = TypeF32
			}
			for _, ti := range ci.Tensors {
				if ti.Rows > 1 && ti.Type != want {
					t.Errorf("%v noShuffle=%v: %s stored as %v, want %v", mode, noShuffle, ti.Name, ti.Type, want)
				}
			}
			m, _, err := ReadBytes("x.mote", b)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range m.Weights.TokenEmbedding.F {
				if math.Float32bits(v) != math.Float32bits(src.Weights.TokenEmbedding.F[i]) {
					t.Fatalf("%v noShuffle=%v: token_embd[%d] = %v, want %v", mode, noShuffle, i, v, src.Weights.TokenEmbedding.F[i])
				}
			}
			if mode == CompressZstd {
				sizes[noShuffle] = len(b)
			}
		}
	}
	if !(sizes[false] < sizes[true]*97/100) {
		t.Errorf("shuffled %d bytes, plain %d: want at least 3 %% smaller", sizes[false], sizes[true])
	}
}
