package models

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"mote/core"
)

// tinyEncoder reads the synthetic GGUF encoder of gguf_bert_test.go.
func tinyEncoder(t testing.TB, seed uint64) *core.Bert {
	t.Helper()
	data, _ := bertGGUF(seed).bytes()
	m, _, err := ReadEncoderBytes("tiny.gguf", data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeEncoder(t testing.TB, m *core.Bert, o WriteOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteEncoder(&buf, m, o); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sameMat compares two matrices bit for bit.
func sameMat(a, b *core.Mat) error {
	if a.Type != b.Type || a.Rows != b.Rows || a.Cols != b.Cols || a.GroupSize != b.GroupSize || a.Codebook != b.Codebook {
		return fmt.Errorf("%v %dx%d g%d vs %v %dx%d g%d", a.Type, a.Rows, a.Cols, a.GroupSize, b.Type, b.Rows, b.Cols, b.GroupSize)
	}
	if !slices.Equal(a.Q, b.Q) || !slices.Equal(a.P, b.P) || !sameF32(a.F, b.F) || !sameF32(a.S, b.S) {
		return fmt.Errorf("values differ")
	}
	return nil
}

func sameF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// sameEncoder compares two encoders: config, tokenizer, every tensor.
func sameEncoder(a, b *core.Bert) error {
	if a.Config != b.Config || a.ActGroup != b.ActGroup {
		return fmt.Errorf("config %+v/%d vs %+v/%d", a.Config, a.ActGroup, b.Config, b.ActGroup)
	}
	ta, tb := a.Tokenizer, b.Tokenizer
	if !slices.Equal(ta.Vocab, tb.Vocab) || !slices.Equal(ta.Special, tb.Special) ||
		[5]int{ta.CLS, ta.SEP, ta.UNK, ta.PAD, ta.MASK} != [5]int{tb.CLS, tb.SEP, tb.UNK, tb.PAD, tb.MASK} {
		return fmt.Errorf("tokenizers differ")
	}
	wa, wb := &a.Weights, &b.Weights
	for i, p := range [][2]*core.Mat{{&wa.TokenEmbedding, &wb.TokenEmbedding}, {&wa.PosEmbedding, &wb.PosEmbedding}, {&wa.TypeEmbedding, &wb.TypeEmbedding}} {
		if err := sameMat(p[0], p[1]); err != nil {
			return fmt.Errorf("embedding %d: %v", i, err)
		}
	}
	if !sameF32(wa.EmbNorm, wb.EmbNorm) || !sameF32(wa.EmbNormB, wb.EmbNormB) {
		return fmt.Errorf("embedding norm differs")
	}
	ma, mb := a.Mats(), b.Mats()
	for i := range ma {
		la, lb := ma[i].Lin, mb[i].Lin
		if err := sameMat(&la.W, &lb.W); err != nil {
			return fmt.Errorf("%s %d: %v", ma[i].Name, ma[i].Layer, err)
		}
		if !sameF32(la.B, lb.B) || !sameF32(la.Min, lb.Min) || (la.Min == nil) != (lb.Min == nil) {
			return fmt.Errorf("%s %d: bias or minimums differ", ma[i].Name, ma[i].Layer)
		}
	}
	for l := range wa.Layers {
		x, y := &wa.Layers[l], &wb.Layers[l]
		if !sameF32(x.AttNorm, y.AttNorm) || !sameF32(x.AttNormB, y.AttNormB) || !sameF32(x.OutNorm, y.OutNorm) || !sameF32(x.OutNormB, y.OutNormB) {
			return fmt.Errorf("layer %d norms differ", l)
		}
	}
	return nil
}

func TestEncoderContainerRoundTrip(t *testing.T) {
	m := tinyEncoder(t, 1)
	for _, mode := range []Compression{CompressNone, CompressZstd, CompressTensor} {
		for _, nocrc := range []bool{false, true} {
			data := writeEncoder(t, m, WriteOptions{Compression: mode, NoTensorCRC: nocrc})
			if !IsEncoder(data) {
				t.Fatalf("%v: IsEncoder = false", mode)
			}
			got, info, err := ReadEncoderBytes("tiny.mote", data)
			if err != nil {
				t.Fatalf("%v crc=%v: %v", mode, !nocrc, err)
			}
			if info.Format != FormatMote || info.Compress != mode.String() || info.Checksums != "verified" {
				t.Errorf("info %+v", info)
			}
			if err := sameEncoder(m, got); err != nil {
				t.Fatalf("%v crc=%v: %v", mode, !nocrc, err)
			}
			// a language-model reader refuses it cleanly
			_, _, err = ReadBytes("tiny.mote", data)
			ggufWantErr(t, err, ErrUnsupported, "unknown flags")
		}
	}
}

func TestEncoderContainerHalvesAndPacked(t *testing.T) {
	m := tinyEncoder(t, 2)
	m.Weights.PosEmbedding.Type = core.F32 // (it is: F16 in the GGUF, widened)
	data := writeEncoder(t, m, WriteOptions{F16: true, F16Scales: true})
	got, _, err := ReadEncoderBytes("h.mote", data)
	if err != nil {
		t.Fatal(err)
	}
	// halves are lossy but close; integer values are kept
	a, b := m.Weights.Layers[0].Wq.W, got.Weights.Layers[0].Wq.W
	if !slices.Equal(a.Q, b.Q) {
		t.Error("q8 values changed with f16 scales")
	}
	for i := range a.S {
		if math.Abs(float64(a.S[i]-b.S[i])) > 1e-3*math.Abs(float64(a.S[i])) {
			t.Fatalf("scale %d: %v -> %v", i, a.S[i], b.S[i])
		}
	}
	// a packed (qk) matrix: 6-bit indices of a uniform codebook
	name := "blk.1.attn_q"
	w := &m.Weights.Layers[1].Wq.W
	pm := &PackedMat{Rows: w.Rows, Cols: w.Cols, Bits: 6, GroupSize: 32, Uniform: true, Codebook: UniformCodebook(6), Scale: ScaleF32}
	pm.Idx = make([]uint8, w.Rows*w.Cols)
	pm.S = make([]float32, w.Rows*pm.GroupsPerRow())
	r := rand.New(rand.NewPCG(1, 1))
	for i := range pm.Idx {
		pm.Idx[i] = uint8(r.IntN(64))
	}
	for i := range pm.S {
		pm.S[i] = float32(r.Float64())
	}
	q := make([]int8, len(pm.Idx))
	for i, x := range pm.Idx {
		q[i] = pm.Codebook[x]
	}
	*w = core.NewMatQ8(w.Rows, w.Cols, 32, q, pm.S)
	m.Weights.Layers[1].Wq.Min = nil
	data = writeEncoder(t, m, WriteOptions{Packed: map[string]*PackedMat{name: pm}})
	got, _, err = ReadEncoderBytes("p.mote", data)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameEncoder(m, got); err != nil {
		t.Fatal(err)
	}
	if err := WriteEncoder(&bytes.Buffer{}, m, WriteOptions{Packed: map[string]*PackedMat{"blk.9.attn_q": pm}}); err == nil {
		t.Error("a packed tensor naming no matrix was accepted")
	}
}

func TestMiniLMContainer(t *testing.T) {
	m, path := miniLM(t)
	st, _ := os.Stat(path)
	text := "The cat sat on the mat."
	toks := m.Tokenizer.Encode(text, true)
	want := make([]float32, m.Config.Dim)
	m.Embed(m.NewState(0), toks, want)
	for _, mode := range []Compression{CompressNone, CompressZstd} {
		data := writeEncoder(t, m, WriteOptions{Compression: mode})
		t.Logf("all-MiniLM-L6-v2 as loaded (Q8 values, f32 scales, Q4_K minimums): %s %d bytes (GGUF %d)", mode, len(data), st.Size())
		got, _, err := ReadEncoderBytes("minilm.mote", data)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameEncoder(m, got); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, m.Config.Dim)
		got.Embed(got.NewState(0), got.Tokenizer.Encode(text, true), out)
		if !sameF32(out, want) {
			t.Fatalf("%v: the container's model embeds differently", mode)
		}
	}
}

func TestHeadContainer(t *testing.T) {
	h := &core.Head{Labels: []string{"ham", "spam", "ünïcode"}, Dim: 5}
	r := rand.New(rand.NewPCG(3, 3))
	h.W = make([]float32, 15)
	h.B = make([]float32, 3)
	for i := range h.W {
		h.W[i] = float32(r.NormFloat64())
	}
	h.B[1] = -0.5
	notes := "encoder: all-MiniLM-L6-v2\naccuracy: 0.97\n"
	for _, mode := range []Compression{CompressNone, CompressZstd, CompressTensor} {
		var buf bytes.Buffer
		if err := WriteHead(&buf, h, notes, WriteOptions{Compression: mode}); err != nil {
			t.Fatal(err)
		}
		hf, err := ReadHeadBytes("h.mote", buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		g := hf.Head
		if hf.Notes != notes || !slices.Equal(g.Labels, h.Labels) || g.Dim != 5 || !sameF32(g.W, h.W) || !sameF32(g.B, h.B) {
			t.Fatalf("%v: read back %+v %q", mode, g, hf.Notes)
		}
		// the kinds do not mix
		_, _, err = ReadEncoderBytes("h.mote", buf.Bytes())
		ggufWantErr(t, err, ErrUnsupported, "a classification head, not a encoder")
		if IsEncoder(buf.Bytes()) {
			t.Error("IsEncoder(head)")
		}
	}
	data := writeEncoder(t, tinyEncoder(t, 3), WriteOptions{})
	_, err := ReadHeadBytes("e.mote", data)
	ggufWantErr(t, err, ErrUnsupported, "holds an encoder, not a classification head")
	for _, bad := range []*core.Head{
		{Labels: []string{"only"}, Dim: 1, W: []float32{1}, B: []float32{0}},
		{Labels: []string{"a", ""}, Dim: 1, W: []float32{1, 2}, B: []float32{0, 0}},
		{Labels: []string{"a", "b"}, Dim: 2, W: []float32{1, 2}, B: []float32{0, 0}},
	} {
		if err := WriteHead(&bytes.Buffer{}, bad, "", WriteOptions{}); err == nil {
			t.Errorf("WriteHead accepted %+v", bad)
		}
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "h.mote")
	f, _ := os.Create(p)
	WriteHead(f, h, "", WriteOptions{})
	f.Close()
	if hf, err := OpenHead(p); err != nil || !slices.Equal(hf.Head.Labels, h.Labels) {
		t.Fatalf("OpenHead: %v", err)
	}
	if _, err := OpenHead(dir); err == nil {
		t.Error("OpenHead(a directory)")
	}
}

func TestEncoderContainerDamage(t *testing.T) {
	m := tinyEncoder(t, 4)
	for _, mode := range []Compression{CompressNone, CompressZstd, CompressTensor} {
		data := writeEncoder(t, m, WriteOptions{Compression: mode})
		for n := 0; n < len(data); n += 1 + n/6 {
			_, _, err := ReadEncoderBytes("cut.mote", data[:n])
			if err == nil {
				t.Fatalf("%v: cut at %d of %d was read", mode, n, len(data))
			}
			ggufCheckErr(t, err, fmt.Sprintf("%v cut at %d", mode, n))
		}
		// every flipped bit is caught: by a CRC, or by a check before it
		r := rand.New(rand.NewPCG(uint64(mode), 9))
		for range 200 {
			d := bytes.Clone(data)
			p := r.IntN(len(d))
			d[p] ^= 1 << r.IntN(8)
			_, _, err := ReadEncoderBytes("flip.mote", d)
			if err == nil {
				t.Fatalf("%v: a flipped bit at %d of %d went unnoticed", mode, p, len(data))
			}
			ggufCheckErr(t, err, fmt.Sprintf("%v flip at %d", mode, p))
		}
	}
}

func TestEncoderContainerBadDirectory(t *testing.T) {
	m := tinyEncoder(t, 5)
	base := writeEncoder(t, m, WriteOptions{NoTensorCRC: true})
	secs := ctSplitSections(t, base)
	// rebuild a file from edited sections (CRCs recomputed, so only the
	// checks of the content speak)
	rebuild := func(edit func(kind uint8, body []byte) []byte) []byte {
		var payload []byte
		for _, s := range secs {
			body := edit(s.kind, bytes.Clone(base[s.bodyAt:s.bodyAt+s.length]))
			var h [sectionHeaderSize]byte
			putSectionHeader(h[:], s.kind, int64(len(body)))
			crc := castagnoliCRC(h[:9], body)
			binary.LittleEndian.PutUint32(h[9:], crc)
			payload = append(append(payload, h[:]...), body...)
		}
		return ctFrame(CompressNone, flagEncoder, payload)
	}
	if _, _, err := ReadEncoderBytes("same.mote", rebuild(func(_ uint8, b []byte) []byte { return b })); err != nil {
		t.Fatalf("rebuilt file: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(kind uint8, b []byte) []byte
		want error
		what string
	}{
		{"config flags", func(k uint8, b []byte) []byte {
			if k == secConfig {
				b[36] = 1
			}
			return b
		}, ErrUnsupported, "encoder config flags"},
		{"config heads", func(k uint8, b []byte) []byte {
			if k == secConfig {
				binary.LittleEndian.PutUint32(b[12:], 3)
			}
			return b
		}, ErrLimit, "not a multiple"},
		{"vocab", func(k uint8, b []byte) []byte {
			if k == secTokenizer {
				binary.LittleEndian.PutUint32(b, 11)
			}
			return b
		}, ErrCorrupt, "tokenizer has 11 tokens"},
		{"cls", func(k uint8, b []byte) []byte {
			if k == secTokenizer {
				binary.LittleEndian.PutUint32(b[4:], 40)
			}
			return b
		}, ErrCorrupt, "cls token id 40"},
		{"name code", func(k uint8, b []byte) []byte {
			if k == secDirectory {
				b[1] = 9 // the first entry's name code
			}
			return b
		}, ErrUnsupported, "tensor name code 9"},
		{"count", func(k uint8, b []byte) []byte {
			if k == secDirectory {
				b[0]--
			}
			return b
		}, ErrCorrupt, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ReadEncoderBytes("bad.mote", rebuild(c.edit))
			ggufWantErr(t, err, c.want, c.what)
		})
	}
}

func castagnoliCRC(parts ...[]byte) uint32 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	return crc32.Checksum(all, castagnoli)
}

func TestFormatEncoderSizes(t *testing.T) {
	doc := ctReadFormatDoc(t)
	for marker, size := range map[string]int{"fixed: encoder config": encConfigSize, "fixed: wordpiece header": wpHeaderSize,
		"fixed: head config": headConfigSize} {
		off := 0
		for _, r := range ctDocTable(t, doc, marker) {
			o, err1 := strconv.Atoi(r[0])
			s, err2 := strconv.Atoi(r[1])
			if err1 != nil || err2 != nil || o != off {
				t.Errorf("%s: row %v does not start at offset %d", marker, r, off)
			}
			off += s
		}
		if off != size {
			t.Errorf("%s: FORMAT.md says %d bytes, the code %d", marker, off, size)
		}
	}
	names := map[int]string{}
	for c, n := range encGlobalNames {
		names[int(c)] = n
	}
	for i, n := range encLayerNames {
		names[encLayerFirst+i] = "blk.N." + n
	}
	rows := ctDocTable(t, doc, "table: encoder tensor names")
	for _, r := range rows {
		code, err := strconv.Atoi(r[0])
		if err != nil || names[code] != r[1] {
			t.Errorf("encoder tensor names: FORMAT.md row %v, the code says %q", r, names[code])
		}
		delete(names, code)
	}
	if len(names) > 0 {
		t.Errorf("encoder tensor names missing from FORMAT.md: %v", names)
	}
	for _, r := range ctDocTable(t, doc, "table: head tensor names") {
		code, _ := strconv.Atoi(r[0])
		if headNames[uint8(code)] != r[1] {
			t.Errorf("head tensor names: FORMAT.md row %v", r)
		}
	}
}
