package models

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"mote/core"
)

// A small GGUF writer for tests: it writes what llama.cpp's gguf writer
// writes (v3 by default, little-endian) and records where each field landed,
// so that tests can corrupt exactly one field of a valid file.

// ggufArr is an array metadata value; items are Go values of the element type
// (or ggufArr for nested arrays).
type ggufArr struct {
	elem  uint32
	items []any
}

type ggufKVW struct {
	key string
	val any // uint8..float64, bool, string, ggufArr, []string, []float32, []int32
}

type ggufTW struct {
	name string
	ne   []uint64 // ne[0] is the row length
	typ  uint32
	data []byte
}

type ggufW struct {
	version   uint32
	kvs       []ggufKVW
	tensors   []ggufTW
	dataOrder []int // order of the tensors' data (nil: as listed)
}

// ggufLayout says where the writer put each field (file offsets).
type ggufLayout struct {
	tensorCount, kvCount int
	key, val             map[string]int // a key's length field; its value's type field
	info                 map[string]int // a tensor info's name length field
	nDims, dims, typ     map[string]int
	offset               map[string]int // a tensor info's offset field
	data                 map[string]int // a tensor's data
	dataStart, end       int
}

func (w *ggufW) alignment() int {
	for _, kv := range w.kvs {
		if kv.key == "general.alignment" {
			if a, ok := kv.val.(uint32); ok && a > 0 {
				return int(a)
			}
		}
	}
	return ggufDefaultAlign
}

func (w *ggufW) kv(key string) any {
	for _, kv := range w.kvs {
		if kv.key == key {
			return kv.val
		}
	}
	return nil
}

// set replaces a key's value, or appends the key.
func (w *ggufW) set(key string, val any) {
	for i := range w.kvs {
		if w.kvs[i].key == key {
			w.kvs[i].val = val
			return
		}
	}
	w.kvs = append(w.kvs, ggufKVW{key, val})
}

func (w *ggufW) del(key string) {
	for i := range w.kvs {
		if w.kvs[i].key == key {
			w.kvs = append(w.kvs[:i], w.kvs[i+1:]...)
			return
		}
	}
}

func (w *ggufW) tensor(name string) *ggufTW {
	for i := range w.tensors {
		if w.tensors[i].name == name {
			return &w.tensors[i]
		}
	}
	return nil
}

type ggufBuf struct{ bytes.Buffer }

func (b *ggufBuf) u32(v uint32) { b.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func (b *ggufBuf) u64(v uint64) { b.Write(binary.LittleEndian.AppendUint64(nil, v)) }
func (b *ggufBuf) str(s string) { b.u64(uint64(len(s))); b.WriteString(s) }

func ggufValueType(v any) uint32 {
	switch v.(type) {
	case uint8:
		return ggufU8
	case int8:
		return ggufI8
	case uint16:
		return ggufU16
	case int16:
		return ggufI16
	case uint32:
		return ggufU32
	case int32:
		return ggufI32
	case float32:
		return ggufF32
	case bool:
		return ggufBool
	case string:
		return ggufString
	case ggufArr, []string, []float32, []int32:
		return ggufArray
	case uint64:
		return ggufU64
	case int64:
		return ggufI64
	case float64:
		return ggufF64
	}
	panic(fmt.Sprintf("gguf writer: no GGUF type for %T", v))
}

// value writes a value without its type.
func (b *ggufBuf) value(v any) {
	switch v := v.(type) {
	case uint8:
		b.WriteByte(v)
	case int8:
		b.WriteByte(byte(v))
	case uint16:
		b.Write(binary.LittleEndian.AppendUint16(nil, v))
	case int16:
		b.Write(binary.LittleEndian.AppendUint16(nil, uint16(v)))
	case uint32:
		b.u32(v)
	case int32:
		b.u32(uint32(v))
	case float32:
		b.u32(math.Float32bits(v))
	case bool:
		if v {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	case string:
		b.str(v)
	case uint64:
		b.u64(v)
	case int64:
		b.u64(uint64(v))
	case float64:
		b.u64(math.Float64bits(v))
	case ggufArr:
		b.u32(v.elem)
		b.u64(uint64(len(v.items)))
		for _, it := range v.items {
			b.value(it)
		}
	case []string:
		b.u32(ggufString)
		b.u64(uint64(len(v)))
		for _, s := range v {
			b.str(s)
		}
	case []float32:
		b.u32(ggufF32)
		b.u64(uint64(len(v)))
		for _, f := range v {
			b.u32(math.Float32bits(f))
		}
	case []int32:
		b.u32(ggufI32)
		b.u64(uint64(len(v)))
		for _, i := range v {
			b.u32(uint32(i))
		}
	default:
		panic(fmt.Sprintf("gguf writer: cannot write %T", v))
	}
}

// bytes lays the file out: header, metadata, tensor infos, padding, then the
// tensors' data in dataOrder, each at a multiple of the alignment.
func (w *ggufW) bytes() ([]byte, ggufLayout) {
	align := w.alignment()
	order := w.dataOrder
	if order == nil {
		order = make([]int, len(w.tensors))
		for i := range order {
			order[i] = i
		}
	}
	offsets := make([]int, len(w.tensors))
	pos := 0
	for _, i := range order {
		offsets[i] = pos
		pos += len(w.tensors[i].data)
		pos = (pos + align - 1) / align * align
	}

	L := ggufLayout{key: map[string]int{}, val: map[string]int{}, info: map[string]int{},
		nDims: map[string]int{}, dims: map[string]int{}, typ: map[string]int{},
		offset: map[string]int{}, data: map[string]int{}}
	var b ggufBuf
	b.WriteString("GGUF")
	v := w.version
	if v == 0 {
		v = 3
	}
	b.u32(v)
	L.tensorCount = b.Len()
	b.u64(uint64(len(w.tensors)))
	L.kvCount = b.Len()
	b.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		L.key[kv.key] = b.Len()
		b.str(kv.key)
		L.val[kv.key] = b.Len()
		b.u32(ggufValueType(kv.val))
		b.value(kv.val)
	}
	for i, t := range w.tensors {
		L.info[t.name] = b.Len()
		b.str(t.name)
		L.nDims[t.name] = b.Len()
		b.u32(uint32(len(t.ne)))
		L.dims[t.name] = b.Len()
		for _, n := range t.ne {
			b.u64(n)
		}
		L.typ[t.name] = b.Len()
		b.u32(t.typ)
		L.offset[t.name] = b.Len()
		b.u64(uint64(offsets[i]))
	}
	for b.Len()%align != 0 {
		b.WriteByte(0)
	}
	L.dataStart = b.Len()
	out := append(b.Bytes(), make([]byte, pos)...)
	for i, t := range w.tensors {
		L.data[t.name] = L.dataStart + offsets[i]
		copy(out[L.dataStart+offsets[i]:], t.data)
	}
	// llama.cpp pads the last tensor too; drop that so the file ends with data
	if len(order) > 0 {
		last := w.tensors[order[len(order)-1]]
		out = out[:L.dataStart+offsets[order[len(order)-1]]+len(last.data)]
	}
	L.end = len(out)
	return out, L
}

// Tensor encodings.

func ggufEncF32(x []float32) []byte {
	out := make([]byte, 0, 4*len(x))
	for _, f := range x {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
	}
	return out
}

func ggufEncF16(x []float32) []byte {
	out := make([]byte, 0, 2*len(x))
	for _, f := range x {
		out = binary.LittleEndian.AppendUint16(out, ggufFloatToHalf(f))
	}
	return out
}

// ggufQuantQ8_0 quantizes as ggml's reference Q8_0 quantizer: per block of 32,
// d = max|x|/127 (stored as float16), q = round(x/d) computed with the fp32 d.
func ggufQuantQ8_0(x []float32) (q []int8, d []uint16) {
	if len(x)%32 != 0 {
		panic("gguf writer: Q8_0 needs a multiple of 32 values")
	}
	q = make([]int8, len(x))
	for i := 0; i < len(x); i += 32 {
		var amax float32
		for _, v := range x[i : i+32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		s := amax / 127
		var id float32
		if s != 0 {
			id = 1 / s
		}
		d = append(d, ggufFloatToHalf(s))
		for j, v := range x[i : i+32] {
			q[i+j] = int8(math.Round(float64(v * id)))
		}
	}
	return q, d
}

func ggufEncQ8_0(x []float32) []byte {
	q, d := ggufQuantQ8_0(x)
	out := make([]byte, 0, len(d)*34)
	for i, s := range d {
		out = binary.LittleEndian.AppendUint16(out, s)
		for _, v := range q[i*32 : i*32+32] {
			out = append(out, byte(v))
		}
	}
	return out
}

func ggufEncode(x []float32, typ uint32) []byte {
	switch typ {
	case ggmlF32:
		return ggufEncF32(x)
	case ggmlF16:
		return ggufEncF16(x)
	case ggmlQ8_0:
		return ggufEncQ8_0(x)
	}
	panic(fmt.Sprintf("gguf writer: cannot encode ggml type %d", typ))
}

// ggufHalfRef is the specification of binary16: (-1)^s 2^(e-15) (1 + m/1024),
// subnormals (-1)^s 2^-14 (m/1024), e = 31 infinities and NaNs, computed with
// float64 arithmetic rather than bit manipulation.
func ggufHalfRef(h uint16) float32 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	switch e {
	case 31:
		if m == 0 {
			return float32(math.Inf(int(sign)))
		}
		return float32(math.NaN())
	case 0:
		return float32(sign * math.Ldexp(m/1024, -14))
	}
	return float32(sign * math.Ldexp(1+m/1024, e-15))
}

// ggufFloatToHalf rounds to the nearest binary16, ties to even, by searching
// the (monotonic) positive finite halves: slow and obviously right.
func ggufFloatToHalf(f float32) uint16 {
	if f != f {
		return 0x7e00
	}
	var sign uint16
	if math.Signbit(float64(f)) {
		sign, f = 0x8000, -f
	}
	if f >= 65520 { // halfway between 65504 and 2^16 rounds to even: infinity
		return sign | 0x7c00
	}
	h := sort.Search(0x7c00, func(i int) bool { return ggufHalfRef(uint16(i)) > f }) - 1
	if h < 0x7bff {
		lo, hi := float64(ggufHalfRef(uint16(h))), float64(ggufHalfRef(uint16(h+1)))
		if dlo, dhi := float64(f)-lo, hi-float64(f); dhi < dlo || dhi == dlo && h&1 == 1 {
			h++
		}
	}
	return sign | uint16(h)
}

// ggufFromModel writes a model as llama.cpp's converter would: llama
// metadata, the SentencePiece vocabulary (spaces as U+2581, "<s>"/"</s>"),
// and the tensors in llama.cpp's names, each in the type typeOf picks.
func ggufFromModel(m *core.Model, typeOf func(name string, rows, cols int) uint32) *ggufW {
	c, wt := m.Config, &m.Weights
	tok := m.Tokenizer
	tokens := make([]string, len(tok.Vocab))
	types := make([]int32, len(tok.Vocab))
	for i, p := range tok.Vocab {
		switch {
		case i == tok.BOS:
			p = "<s>"
		case i == tok.EOS:
			p = "</s>"
		}
		tokens[i] = strings.ReplaceAll(p, " ", "\u2581")
		types[i] = 1
	}
	w := &ggufW{kvs: []ggufKVW{
		{"general.architecture", "llama"},
		{"general.name", "test model"},
		{"llama.context_length", uint32(c.SeqLen)},
		{"llama.embedding_length", uint32(c.Dim)},
		{"llama.block_count", uint32(c.NLayers)},
		{"llama.feed_forward_length", uint32(c.HiddenDim)},
		{"llama.rope.dimension_count", uint32(c.HeadSize())},
		{"llama.attention.head_count", uint32(c.NHeads)},
		{"llama.attention.head_count_kv", uint32(c.NKVHeads)},
		{"llama.attention.layer_norm_rms_epsilon", c.NormEps},
		{"llama.rope.freq_base", c.RopeTheta},
		{"general.file_type", uint32(0)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.scores", append([]float32(nil), tok.Scores...)},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.bos_token_id", uint32(tok.BOS)},
		{"tokenizer.ggml.eos_token_id", uint32(tok.EOS)},
	}}
	add := func(name string, x []float32, rows, cols int, typ uint32) {
		ne := []uint64{uint64(cols), uint64(rows)}
		if rows == 1 {
			ne = ne[:1]
		}
		w.tensors = append(w.tensors, ggufTW{name: name, ne: ne, typ: typ, data: ggufEncode(x, typ)})
	}
	mat := func(name string, mt *core.Mat) {
		x := make([]float32, mt.Rows*mt.Cols)
		for r := 0; r < mt.Rows; r++ {
			mt.Row(r, x[r*mt.Cols:(r+1)*mt.Cols])
		}
		add(name, x, mt.Rows, mt.Cols, typeOf(name, mt.Rows, mt.Cols))
	}
	vec := func(name string, x []float32) { add(name, x, 1, len(x), typeOf(name, 1, len(x))) }
	d := c.Dim
	mat("token_embd.weight", &wt.TokenEmbedding)
	vec("output_norm.weight", wt.RmsFinal)
	if !m.SharedClassifier() {
		mat("output.weight", wt.Wcls)
	}
	for l := 0; l < c.NLayers; l++ {
		blk := "blk." + strconv.Itoa(l) + "."
		vec(blk+"attn_norm.weight", wt.RmsAtt[l*d:(l+1)*d])
		mat(blk+"attn_q.weight", &wt.Wq[l])
		mat(blk+"attn_k.weight", &wt.Wk[l])
		mat(blk+"attn_v.weight", &wt.Wv[l])
		mat(blk+"attn_output.weight", &wt.Wo[l])
		vec(blk+"ffn_norm.weight", wt.RmsFFN[l*d:(l+1)*d])
		mat(blk+"ffn_gate.weight", &wt.W1[l])
		mat(blk+"ffn_down.weight", &wt.W2[l])
		mat(blk+"ffn_up.weight", &wt.W3[l])
	}
	return w
}

func ggufAllF32(string, int, int) uint32 { return ggmlF32 }
