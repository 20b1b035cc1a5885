package models

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"mote/core"
	"mote/internal/testmodels"
)

// The real encoder: all-MiniLM-L6-v2 Q4_K_M from a Go module's testdata
// (internal/testmodels fetches it into the module cache and checks it).
var (
	miniOnce  sync.Once
	miniPath  string
	miniModel *core.Bert
	miniErr   error
	miniDir   = filepath.Join("..", "..", "shared", "reference", "minilm")
)

// miniLM returns the model, read once per test binary, and its path.
func miniLM(t testing.TB) (*core.Bert, string) {
	t.Helper()
	miniOnce.Do(func() {
		miniPath, miniErr = testmodels.MiniLM()
		if miniErr == nil {
			miniModel, _, miniErr = OpenEncoder(miniPath)
		}
	})
	if miniErr != nil {
		t.Fatal(miniErr)
	}
	return miniModel, miniPath
}

// minilmRef is ../shared/reference/minilm/embeddings.json: llama.cpp's vectors.
type minilmRef struct {
	Items []struct {
		Text      string
		TokenIDs  []int     `json:"token_ids"`
		Norm      float64   `json:"l2_norm_before_normalize"`
		Embedding []float32 `json:"embedding"`
	}
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Tolerances against llama.cpp, which re-quantizes activations to 8 bits
// (Q8_0/Q8_K blocks) and uses a tanh GELU: the bound on the cosine,
// and a bound on the pre-normalization norm that those differences keep
// well inside (measured: at most 0.6%).
const (
	minRefCosine  = 0.999
	maxRefNormErr = 0.02
)

func TestMiniLMReferenceEmbeddings(t *testing.T) {
	m, _ := miniLM(t)
	var ref minilmRef
	readJSON(t, filepath.Join(miniDir, "embeddings.json"), &ref)
	if len(ref.Items) != 4 {
		t.Fatalf("reference has %d items, want 4", len(ref.Items))
	}
	for _, ag := range []int{m.ActGroup, 0} { // as loaded (int8 activations), and float activations
		mm := *m
		mm.ActGroup = ag
		s := mm.NewState(0)
		for _, it := range ref.Items {
			toks := mm.Tokenizer.Encode(it.Text, true)
			if !slices.Equal(toks, it.TokenIDs) {
				t.Errorf("%q: tokens %v, llama.cpp %v", it.Text, toks, it.TokenIDs)
				continue
			}
			out := make([]float32, mm.Config.Dim)
			norm := mm.Embed(s, toks, out)
			cos := core.Cosine(out, it.Embedding)
			t.Logf("act group %2d: %-55q cosine %.6f, norm %.4f (llama.cpp %.4f)", ag, it.Text, cos, norm, it.Norm)
			if cos < minRefCosine {
				t.Errorf("act group %d, %q: cosine %.6f to llama.cpp's vector, want >= %v", ag, it.Text, cos, minRefCosine)
			}
			if e := math.Abs(float64(norm)-it.Norm) / it.Norm; e > maxRefNormErr {
				t.Errorf("act group %d, %q: norm %.4f, llama.cpp %.4f (relative error %.3f)", ag, it.Text, norm, it.Norm, e)
			}
		}
	}
}

func TestMiniLMTokenizerEdgeCases(t *testing.T) {
	m, _ := miniLM(t)
	var ref struct {
		Items []struct {
			Text      string
			TokenIDs  []int `json:"token_ids"`
			NoSpecial []int `json:"token_ids_without_parse_special"`
		}
	}
	readJSON(t, filepath.Join(miniDir, "tokenizer-edge-cases.json"), &ref)
	if len(ref.Items) < 17 {
		t.Fatalf("only %d edge cases", len(ref.Items))
	}
	withoutSpecial := 0
	for _, it := range ref.Items {
		if got := m.Tokenizer.Encode(it.Text, true); !slices.Equal(got, it.TokenIDs) {
			t.Errorf("%q: %v, llama.cpp %v", it.Text, got, it.TokenIDs)
		}
		if it.NoSpecial != nil {
			withoutSpecial++
			if got := m.Tokenizer.Encode(it.Text, false); !slices.Equal(got, it.NoSpecial) {
				t.Errorf("%q without special tokens: %v, llama.cpp %v", it.Text, got, it.NoSpecial)
			}
		}
	}
	if withoutSpecial == 0 {
		t.Error("no case without special-token parsing was checked")
	}
}

func TestMiniLMShape(t *testing.T) {
	m, path := miniLM(t)
	want := core.BertConfig{Dim: 384, HiddenDim: 1536, NLayers: 6, NHeads: 12, VocabSize: 30522, SeqLen: 512, TypeVocab: 2, NormEps: 1e-12}
	if m.Config != want {
		t.Errorf("config %+v, want %+v", m.Config, want)
	}
	if m.ActGroup != 32 { // as llama.cpp's Q8_0 activation blocks (Q6_K's matrices take 16)
		t.Errorf("activation group %d, want 32", m.ActGroup)
	}
	tk := m.Tokenizer
	if tk.CLS != 101 || tk.SEP != 102 || tk.UNK != 100 || tk.PAD != 0 || tk.MASK != 103 {
		t.Errorf("special ids cls %d sep %d unk %d pad %d mask %d", tk.CLS, tk.SEP, tk.UNK, tk.PAD, tk.MASK)
	}
	if !slices.Equal(tk.Special, []int{0, 100, 101, 102, 103}) {
		t.Errorf("special tokens %v", tk.Special)
	}
	// ffn_down is Q6_K (groups of 16) in layers 0 and 3, Q4_K (with minimums) elsewhere
	for l, ly := range m.Weights.Layers {
		q4k := l != 0 && l != 3
		if (ly.Down.Min != nil) != q4k || q4k && ly.Down.W.GroupSize != 32 || !q4k && ly.Down.W.GroupSize != 16 {
			t.Errorf("layer %d ffn_down: group %d, minimums %v", l, ly.Down.W.GroupSize, ly.Down.Min != nil)
		}
		if ly.Wq.Min != nil || ly.Wq.W.Type != core.Q8 || ly.Wq.W.GroupSize != 32 {
			t.Errorf("layer %d attn_q: %v group %d", l, ly.Wq.W.Type, ly.Wq.W.GroupSize)
		}
	}
	// the llama reader refuses it, pointing at the encoder
	_, _, err := Open(path, "")
	ggufWantErr(t, err, ErrUnsupported, "sentence encoder")
}

func TestEncoderRefusesLlama(t *testing.T) {
	data := ggufReadFile(t) // stories260K.gguf
	_, _, err := ReadEncoderBytes("stories260K.gguf", data)
	ggufWantErr(t, err, ErrUnsupported, `architecture "llama" is not an encoder`)
	if IsEncoder(data) {
		t.Error("IsEncoder(stories260K.gguf)")
	}
	_, _, err = ReadEncoderBytes("x", []byte("nope, not a model"))
	ggufWantErr(t, err, ErrBadMagic, "")
}

// Block formats: sizes (ggml's static_asserts) and decoding against a
// plain float dequantization written from ggml's formulas.

func TestGGMLBlockSizes(t *testing.T) {
	want := map[uint32]int{
		ggmlQ8_0: 2 + 32,            // d, qs
		ggmlQ5_0: 2 + 4 + 16,        // d, qh, qs
		ggmlQ6_K: 128 + 64 + 16 + 2, // ql, qh, scales, d
		ggmlQ4_K: 2 + 2 + 12 + 128,  // d, dmin, scales, qs
	}
	for typ, f := range blockFormats {
		if f.bytes != want[typ] || ggmlTypes[typ].bytes != int64(f.bytes) || ggmlTypes[typ].elems != int64(f.elems) {
			t.Errorf("%s: block of %d values in %d bytes; ggml: %d bytes (table %d/%d)",
				ggmlTypeName(typ), f.elems, f.bytes, want[typ], ggmlTypes[typ].elems, ggmlTypes[typ].bytes)
		}
		if f.elems%f.group != 0 {
			t.Errorf("%s: groups of %d do not tile blocks of %d", ggmlTypeName(typ), f.group, f.elems)
		}
	}
}

// specDequant is ggml's dequantize_row_* for one block, in float64 from
// the stored bits.
func specDequant(typ uint32, blk []byte) []float64 {
	h := func(o int) float64 { return float64(ggufHalfRef(binary.LittleEndian.Uint16(blk[o:]))) }
	switch typ {
	case ggmlQ8_0:
		y := make([]float64, 32)
		for j := range y {
			y[j] = h(0) * float64(int8(blk[2+j]))
		}
		return y
	case ggmlQ5_0:
		y := make([]float64, 32)
		qh := binary.LittleEndian.Uint32(blk[2:])
		for j := 0; j < 16; j++ {
			x0 := int(blk[6+j]&0x0f) | int((qh>>j)<<4)&0x10
			x1 := int(blk[6+j]>>4) | int(qh>>(j+12))&0x10
			y[j] = float64(x0-16) * h(0)
			y[j+16] = float64(x1-16) * h(0)
		}
		return y
	case ggmlQ6_K:
		y := make([]float64, 256)
		d := h(208)
		for n := 0; n < 2; n++ {
			ql, qh, sc := blk[64*n:], blk[128+32*n:], blk[192+8*n:]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int(ql[l]&0xf|(qh[l]>>0&3)<<4) - 32
				q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				y[128*n+l] = d * float64(int8(sc[is])) * float64(q1)
				y[128*n+l+32] = d * float64(int8(sc[is+2])) * float64(q2)
				y[128*n+l+64] = d * float64(int8(sc[is+4])) * float64(q3)
				y[128*n+l+96] = d * float64(int8(sc[is+6])) * float64(q4)
			}
		}
		return y
	case ggmlQ4_K:
		y := make([]float64, 0, 256)
		d, dmin := h(0), h(2)
		scales, q := blk[4:16], blk[16:]
		scaleMin := func(j int) (float64, float64) {
			if j < 4 {
				return float64(scales[j] & 63), float64(scales[j+4] & 63)
			}
			return float64(scales[j+4]&0xf | (scales[j-4]>>6)<<4), float64(scales[j+4]>>4 | (scales[j]>>6)<<4)
		}
		for j, is := 0, 0; j < 256; j, is = j+64, is+2 {
			sc1, m1 := scaleMin(is)
			sc2, m2 := scaleMin(is + 1)
			for l := 0; l < 32; l++ {
				y = append(y, d*sc1*float64(q[l]&0xf)-dmin*m1)
			}
			for l := 0; l < 32; l++ {
				y = append(y, d*sc2*float64(q[l]>>4)-dmin*m2)
			}
			q = q[32:]
		}
		return y
	}
	panic("no spec for " + ggmlTypeName(typ))
}

// randBlocks returns n random blocks of a type, with finite, moderate f16
// scales (random bytes elsewhere: every bit pattern of the values is valid).
func randBlocks(r *rand.Rand, typ uint32, n int) []byte {
	f := blockFormats[typ]
	out := make([]byte, n*f.bytes)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	half := func(b []byte) { binary.LittleEndian.PutUint16(b, ggufFloatToHalf(float32(r.Float64()*0.01+1e-4))) }
	for i := 0; i < n; i++ {
		blk := out[i*f.bytes : (i+1)*f.bytes]
		switch typ {
		case ggmlQ8_0, ggmlQ5_0:
			half(blk)
		case ggmlQ6_K:
			half(blk[208:])
		case ggmlQ4_K:
			half(blk)
			half(blk[2:])
		}
	}
	return out
}

func TestGGMLBlockDecoders(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for typ, f := range blockFormats {
		for range 50 {
			blk := randBlocks(r, typ, 1)
			q := make([]int8, f.elems)
			s := make([]float32, f.elems/f.group)
			mn := make([]float32, len(s))
			f.decode(blk, q, s, mn)
			want := specDequant(typ, blk)
			for j, w := range want {
				got := float64(q[j])*float64(s[j/f.group]) - float64(mn[j/f.group])
				if got != w { // both exact in float64: no tolerance
					t.Fatalf("%s value %d: %v·%v - %v = %v, ggml's formula gives %v", ggmlTypeName(typ), j, q[j], s[j/f.group], mn[j/f.group], got, w)
				}
			}
			if !f.hasMin && slices.ContainsFunc(mn, func(v float32) bool { return v != 0 }) {
				t.Fatalf("%s wrote minimums", ggmlTypeName(typ))
			}
		}
	}
}

// A tiny synthetic BERT GGUF with every tensor type the encoder reads.
var tinyBertConfig = core.BertConfig{Dim: 256, HiddenDim: 512, NLayers: 2, NHeads: 4, VocabSize: 12, SeqLen: 16, TypeVocab: 2, NormEps: 1e-12}

var tinyBertVocab = []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "▁the", "▁cat", "s", "▁sat", "▁!", "▁on", "▁mat"}

// bertGGUF writes a tiny encoder: matrices of layer l in the l-th of
// Q5_0/Q8_0/Q6_K/Q4_K (by matrix), embeddings F16/F32/Q8_0, vectors F32.
func bertGGUF(seed uint64) *ggufW {
	r := rand.New(rand.NewPCG(seed, 3))
	c := tinyBertConfig
	w := &ggufW{}
	types := make([]int32, c.VocabSize)
	for i := range types {
		types[i] = ggufTokNormal
		if i < 5 {
			types[i] = ggufTokControl
		}
	}
	for _, kv := range []ggufKVW{
		{"general.architecture", "bert"}, {"general.name", "tiny"},
		{"bert.block_count", uint32(c.NLayers)}, {"bert.context_length", uint32(c.SeqLen)},
		{"bert.embedding_length", uint32(c.Dim)}, {"bert.feed_forward_length", uint32(c.HiddenDim)},
		{"bert.attention.head_count", uint32(c.NHeads)}, {"bert.attention.layer_norm_epsilon", float32(1e-12)},
		{"bert.attention.causal", false}, {"bert.pooling_type", uint32(1)},
		{"tokenizer.ggml.token_type_count", uint32(2)}, {"tokenizer.ggml.model", "bert"},
		{"tokenizer.ggml.tokens", tinyBertVocab}, {"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.scores", make([]float32, c.VocabSize)},
		{"tokenizer.ggml.cls_token_id", uint32(2)}, {"tokenizer.ggml.seperator_token_id", uint32(3)},
		{"tokenizer.ggml.unknown_token_id", uint32(1)}, {"tokenizer.ggml.padding_token_id", uint32(0)},
		{"tokenizer.ggml.mask_token_id", uint32(4)},
	} {
		w.set(kv.key, kv.val)
	}
	f32 := func(n int, scale, bias float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(bias + scale*r.NormFloat64())
		}
		return v
	}
	add := func(name string, rows, cols int, typ uint32) {
		var data []byte
		switch typ {
		case ggmlF32:
			data = ggufEncF32(f32(rows*cols, 0.3, 0))
		case ggmlF16:
			data = ggufEncF16(f32(rows*cols, 0.3, 0))
		default:
			data = randBlocks(r, typ, rows*cols/blockFormats[typ].elems)
		}
		ne := []uint64{uint64(cols)}
		if rows > 1 || name == "token_types.weight" {
			ne = append(ne, uint64(rows))
		}
		w.tensors = append(w.tensors, ggufTW{name: name, ne: ne, typ: typ, data: data})
	}
	vec := func(name string, n int, bias float64) {
		w.tensors = append(w.tensors, ggufTW{name: name, ne: []uint64{uint64(n)}, typ: ggmlF32, data: ggufEncF32(f32(n, 0.1, bias))})
	}
	d, h := c.Dim, c.HiddenDim
	add("token_embd.weight", c.VocabSize, d, ggmlQ8_0)
	add("position_embd.weight", c.SeqLen, d, ggmlF16)
	add("token_types.weight", c.TypeVocab, d, ggmlF32)
	vec("token_embd_norm.weight", d, 1)
	vec("token_embd_norm.bias", d, 0)
	quant := []uint32{ggmlQ5_0, ggmlQ8_0, ggmlQ6_K, ggmlQ4_K}
	for l := 0; l < c.NLayers; l++ {
		blk := "blk." + strconv.Itoa(l) + "."
		for i, m := range []struct {
			name       string
			rows, cols int
		}{{"attn_q", d, d}, {"attn_k", d, d}, {"attn_v", d, d}, {"attn_output", d, d}, {"ffn_up", h, d}, {"ffn_down", d, h}} {
			add(blk+m.name+".weight", m.rows, m.cols, quant[(i+l)%len(quant)])
			vec(blk+m.name+".bias", m.rows, 0)
		}
		vec(blk+"attn_output_norm.weight", d, 1)
		vec(blk+"attn_output_norm.bias", d, 0)
		vec(blk+"layer_output_norm.weight", d, 1)
		vec(blk+"layer_output_norm.bias", d, 0)
	}
	return w
}

func TestTinyBertGGUF(t *testing.T) {
	w := bertGGUF(1)
	data, _ := w.bytes()
	if !IsEncoder(data) {
		t.Fatal("IsEncoder(tiny bert) = false")
	}
	m, info, err := ReadEncoderBytes("tiny.gguf", data)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != FormatGGUF || m.Config != tinyBertConfig || m.ActGroup != 32 {
		t.Fatalf("format %v config %+v act %d", info.Format, m.Config, m.ActGroup)
	}
	// every matrix holds exactly what ggml's dequantization of its blocks says
	for _, nl := range m.Mats() {
		name := fmt.Sprintf("blk.%d.%s.weight", nl.Layer, nl.Name)
		tw := w.tensor(name)
		f := blockFormats[tw.typ]
		l := nl.Lin
		row := make([]float32, l.W.Cols)
		for i := 0; i < l.W.Rows; i++ {
			l.W.Row(i, row)
			for j := 0; j < l.W.Cols; j += f.elems {
				k := i*l.W.Cols + j
				want := specDequant(tw.typ, tw.data[k/f.elems*f.bytes:])
				for e := range want {
					got := float64(row[j+e])
					if l.Min != nil {
						got = float64(l.W.Q[k+e])*float64(l.W.S[(k+e)/l.W.GroupSize]) - float64(l.Min[(k+e)/l.W.GroupSize])
					}
					if math.Abs(got-want[e]) > 1e-6*math.Abs(want[e]) {
						t.Fatalf("%s [%d,%d]: %v, ggml %v", name, i, j+e, got, want[e])
					}
				}
			}
		}
		if (tw.typ == ggmlQ4_K) != (l.Min != nil) {
			t.Errorf("%s (%s): minimums %v", name, ggmlTypeName(tw.typ), l.Min != nil)
		}
	}
	out := make([]float32, m.Config.Dim)
	m.Embed(m.NewState(0), m.Tokenizer.Encode("the cats sat on the mat!", true), out)
	if n := core.Cosine(out, out); math.IsNaN(n) || math.Abs(n-1) > 1e-9 {
		t.Errorf("embedding is not a unit vector: %v", out[:4])
	}
}

func TestTinyBertBadFiles(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(w *ggufW)
		want error
		what string
	}{
		{"causal", func(w *ggufW) { w.set("bert.attention.causal", true) }, ErrUnsupported, "causal"},
		{"cls pooling", func(w *ggufW) { w.set("bert.pooling_type", uint32(2)) }, ErrUnsupported, "pooling type 2"},
		{"tokenizer", func(w *ggufW) { w.set("tokenizer.ggml.model", "llama") }, ErrUnsupported, `tokenizer model "llama"`},
		{"no types", func(w *ggufW) { w.del("tokenizer.ggml.token_type") }, ErrCorrupt, "token_type"},
		{"no cls", func(w *ggufW) { w.del("tokenizer.ggml.cls_token_id") }, ErrCorrupt, "cls_token_id"},
		{"sep outside", func(w *ggufW) { w.set("tokenizer.ggml.seperator_token_id", uint32(12)) }, ErrCorrupt, "outside the vocabulary"},
		{"gqa", func(w *ggufW) { w.set("bert.attention.head_count_kv", uint32(2)) }, ErrUnsupported, "key/value heads"},
		{"heads", func(w *ggufW) { w.set("bert.attention.head_count", uint32(3)) }, ErrLimit, "not a multiple"},
		{"missing bias", func(w *ggufW) {
			i := slices.IndexFunc(w.tensors, func(t ggufTW) bool { return t.name == "blk.1.attn_k.bias" })
			w.tensors = slices.Delete(w.tensors, i, i+1)
		}, ErrCorrupt, "missing tensor blk.1.attn_k.bias"},
		{"extra layer tensor", func(w *ggufW) {
			w.tensors = append(w.tensors, ggufTW{name: "blk.0.ffn_gate.weight", ne: []uint64{4}, typ: ggmlF32, data: make([]byte, 16)})
		}, ErrUnsupported, "no such weight"},
		{"quantized bias", func(w *ggufW) {
			tw := w.tensor("blk.0.attn_q.bias")
			tw.typ, tw.data = ggmlQ8_0, make([]byte, 256/32*34)
		}, ErrUnsupported, "norm vectors F32 or F16"},
		{"position rows", func(w *ggufW) { w.tensor("position_embd.weight").ne[1] = 8 }, ErrCorrupt, "position_embd.weight has shape"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := bertGGUF(2)
			c.edit(w)
			data, _ := w.bytes()
			_, _, err := ReadEncoderBytes("bad.gguf", data)
			ggufWantErr(t, err, c.want, c.what)
		})
	}
}

func TestTinyBertTruncatedAndFlipped(t *testing.T) {
	data, L := bertGGUF(3).bytes()
	for n := 0; n < len(data); n += 1 + n/8 {
		_, _, err := ReadEncoderBytes("cut.gguf", data[:n])
		if err == nil {
			t.Fatalf("a file cut at %d of %d bytes was read", n, len(data))
		}
		ggufCheckErr(t, err, fmt.Sprintf("cut at %d", n))
	}
	r := rand.New(rand.NewPCG(4, 4))
	for range 300 {
		d := bytes.Clone(data)
		p := r.IntN(L.dataStart)
		d[p] ^= 1 << r.IntN(8)
		m, _, err := ReadEncoderBytes("flip.gguf", d)
		ggufCheckErr(t, err, fmt.Sprintf("flip at %d", p))
		if err == nil {
			if err := m.Validate(); err != nil {
				t.Fatalf("flip at %d: read a model that does not validate: %v", p, err)
			}
		}
	}
}

// FuzzReadEncoder feeds the encoder reader arbitrary bytes: a validated
// model or an *Error wrapping a sentinel, never a panic.
func FuzzReadEncoder(f *testing.F) {
	w := bertGGUF(5)
	data, L := w.bytes()
	f.Add(data[:L.dataStart+64])
	for _, n := range []int{8, 40, L.val["tokenizer.ggml.tokens"] + 20, L.info["blk.0.attn_q.weight"] + 12, L.dataStart} {
		f.Add(data[:n])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _, err := ReadEncoderBytes("fuzz.gguf", data)
		if err != nil {
			ggufCheckErr(t, err, "fuzz")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatal("not an *Error")
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("read a model that does not validate: %v", err)
		}
	})
}

// TestGGUFLlamaNewBlocks: a llama GGUF with Q5_0 and Q6_K matrices reads
// them exactly (as Q8, activations in groups of Q6_K's 16), and one with a
// Q4_K matrix is refused (a llama has no minimums).
func TestGGUFLlamaNewBlocks(t *testing.T) {
	c := core.Config{Dim: 256, HiddenDim: 256, NLayers: 1, NHeads: 4, NKVHeads: 4, VocabSize: 12, SeqLen: 8, NormEps: 1e-5, RopeTheta: 10000}
	r := rand.New(rand.NewPCG(8, 8))
	w := ggufFromModel(ggufTiny(3, c), ggufAllF32)
	types := map[string]uint32{"blk.0.attn_q.weight": ggmlQ5_0, "blk.0.ffn_down.weight": ggmlQ6_K, "blk.0.attn_k.weight": ggmlQ8_0}
	for name, typ := range types {
		tw := w.tensor(name)
		tw.typ, tw.data = typ, randBlocks(r, typ, 256*256/blockFormats[typ].elems)
	}
	data, _ := w.bytes()
	m, _, err := ReadBytes("blocks.gguf", data)
	if err != nil {
		t.Fatal(err)
	}
	if m.ActGroup != 16 {
		t.Errorf("activation group %d, want 16 (Q6_K)", m.ActGroup)
	}
	for name, mt := range map[string]*core.Mat{"blk.0.attn_q.weight": &m.Weights.Wq[0], "blk.0.ffn_down.weight": &m.Weights.W2[0], "blk.0.attn_k.weight": &m.Weights.Wk[0]} {
		tw := w.tensor(name)
		f := blockFormats[tw.typ]
		row := make([]float32, mt.Cols)
		for i := 0; i < mt.Rows; i++ {
			mt.Row(i, row)
			for j := 0; j < mt.Cols; j += f.elems {
				k := i*mt.Cols + j
				want := specDequant(tw.typ, tw.data[k/f.elems*f.bytes:])
				for e := range want {
					if math.Abs(float64(row[j+e])-want[e]) > 1e-6*math.Abs(want[e]) {
						t.Fatalf("%s [%d,%d]: %v, ggml %v", name, i, j+e, row[j+e], want[e])
					}
				}
			}
		}
	}
	tw := w.tensor("blk.0.ffn_up.weight")
	tw.typ, tw.data = ggmlQ4_K, randBlocks(r, ggmlQ4_K, 256)
	data, _ = w.bytes()
	_, _, err = ReadBytes("q4k.gguf", data)
	ggufWantErr(t, err, ErrUnsupported, "Q4_K")
}
