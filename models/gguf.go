// GGUF reading: the subset of llama.cpp's GGUF that describes a plain llama
// (llama2.c-shaped) model, so that the models people already have run here,
// and a BERT sentence encoder (gguf_bert.go).
//
// Read: GGUF v2 and v3, little-endian; every metadata value type (values
// mote does not use are skipped, nested arrays included); architecture
// "llama" with the SentencePiece ("llama") vocabulary embedded, and "bert"
// with its WordPiece vocabulary; tensors of type F32, F16 (widened to
// float32 at load, exactly), and the block types Q8_0, Q5_0, Q6_K and Q4_K
// (gguf_blocks.go: the first three are held exactly as mote's Q8, Q4_K
// exactly as Q8 plus per-group minimums, which only the encoder computes).
// Not read: GGUF v1 (different integer widths, long obsolete), big-endian
// files, other architectures and block types, and anything that changes the
// arithmetic mote's forward pass does (biases in a llama, rope scaling,
// experts): those are refused with ErrUnsupported rather than silently
// ignored.
//
// The file is read as a forward-only stream, as every mote reader is: the
// header, metadata and tensor infos come first, all of them bounded and
// checked (shapes against the config, offsets against the alignment, each
// other and the file size) before any weight is allocated; then the tensors
// are read in file order, whatever order the infos list them in, straight
// into their final slices. No permutation of wq/wk is needed: llama.cpp's
// LLAMA rope type rotates adjacent pairs, as llama2.c does, and its
// converters store llama2.c checkpoints' matrices unchanged.

package models

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"mote/core"
)

// Hard limits on what a GGUF header may ask for.
const (
	ggufMaxKV        = 1 << 16         // metadata key/value pairs
	ggufMaxTensors   = 1 << 16         // tensor infos (a 1024-layer llama has ~9,200)
	ggufMaxKey       = 1 << 16         // bytes in a key (the spec's own limit is 65535)
	ggufMaxString    = 1 << 20         // bytes in a string value
	ggufMaxArray     = 1 << 26         // elements in an array value
	ggufMaxDepth     = 8               // nesting of arrays
	ggufMaxName      = 1 << 10         // bytes in a tensor name (ggml uses 64)
	ggufMaxDims      = 4               // ggml's GGML_MAX_DIMS
	ggufMaxElems     = core.MaxWeights // elements in one tensor, and in each dim
	ggufMaxAlign     = 1 << 16         // general.alignment
	ggufDefaultAlign = 32
)

// GGUF metadata value types.
const (
	ggufU8 uint32 = iota
	ggufI8
	ggufU16
	ggufI16
	ggufU32
	ggufI32
	ggufF32
	ggufBool
	ggufString
	ggufArray
	ggufU64
	ggufI64
	ggufF64
	ggufNumTypes
)

var ggufTypeNames = [ggufNumTypes]string{"uint8", "int8", "uint16", "int16", "uint32", "int32",
	"float32", "bool", "string", "array", "uint64", "int64", "float64"}

func ggufTypeName(t uint32) string {
	if t < ggufNumTypes {
		return ggufTypeNames[t]
	}
	return fmt.Sprintf("type %d", t)
}

// ggufScalarSize is the size of a fixed-size value type, 0 otherwise.
func ggufScalarSize(t uint32) int64 {
	switch t {
	case ggufU8, ggufI8, ggufBool:
		return 1
	case ggufU16, ggufI16:
		return 2
	case ggufU32, ggufI32, ggufF32:
		return 4
	case ggufU64, ggufI64, ggufF64:
		return 8
	}
	return 0
}

// ggufMinSize is the fewest bytes a value of type t occupies, which bounds
// how many of them the rest of a file can hold.
func ggufMinSize(t uint32) int64 {
	switch t {
	case ggufString:
		return 8 // length
	case ggufArray:
		return 12 // element type and count
	}
	return ggufScalarSize(t)
}

// ggml tensor types mote loads.
const (
	ggmlF32  = 0
	ggmlF16  = 1
	ggmlQ5_0 = 6
	ggmlQ8_0 = 8
	ggmlQ4_K = 12
	ggmlQ6_K = 14
)

// ggmlType is a ggml tensor type's block: elems values stored in bytes bytes.
type ggmlType struct {
	name         string
	elems, bytes int64
}

// ggmlTypes lists the types whose block size mote knows, so that it can check
// where tensors it skips end, and name what it refuses.
var ggmlTypes = map[uint32]ggmlType{
	0: {"F32", 1, 4}, 1: {"F16", 1, 2}, 2: {"Q4_0", 32, 18}, 3: {"Q4_1", 32, 20},
	6: {"Q5_0", 32, 22}, 7: {"Q5_1", 32, 24}, 8: {"Q8_0", 32, 34}, 9: {"Q8_1", 32, 36},
	10: {"Q2_K", 256, 84}, 11: {"Q3_K", 256, 110}, 12: {"Q4_K", 256, 144},
	13: {"Q5_K", 256, 176}, 14: {"Q6_K", 256, 210}, 15: {"Q8_K", 256, 292},
	24: {"I8", 1, 1}, 25: {"I16", 1, 2}, 26: {"I32", 1, 4}, 27: {"I64", 1, 8},
	28: {"F64", 1, 8}, 30: {"BF16", 1, 2},
}

func ggmlTypeName(t uint32) string {
	if tt, ok := ggmlTypes[t]; ok {
		return tt.name
	}
	return fmt.Sprintf("ggml type %d", t)
}

// ggufValue is one metadata value mote uses.
type ggufValue struct {
	typ  uint32
	off  int64 // file offset of its key
	u    uint64
	i    int64
	f    float64
	s    string
	elem uint32 // arrays: element type
	n    int64  // arrays: element count
	strs []string
	f32s []float32
	i32s []int32
}

// ggufKeys are the metadata keys mote reads; all others are skipped unread.
var ggufKeys = func() map[string]bool {
	keys := map[string]bool{}
	for _, k := range strings.Fields(`
		general.architecture general.alignment
		llama.embedding_length llama.feed_forward_length llama.block_count
		llama.attention.head_count llama.attention.head_count_kv llama.context_length
		llama.attention.layer_norm_rms_epsilon llama.rope.freq_base llama.rope.dimension_count
		llama.vocab_size llama.attention.key_length llama.attention.value_length llama.expert_count
		llama.rope.scaling.type llama.rope.scale_linear llama.rope.scaling.factor
		tokenizer.ggml.model tokenizer.ggml.tokens tokenizer.ggml.scores tokenizer.ggml.token_type
		tokenizer.ggml.bos_token_id tokenizer.ggml.eos_token_id
		bert.embedding_length bert.feed_forward_length bert.block_count bert.attention.head_count
		bert.attention.head_count_kv bert.context_length bert.attention.layer_norm_epsilon
		bert.attention.causal bert.pooling_type bert.vocab_size tokenizer.ggml.token_type_count
		tokenizer.ggml.cls_token_id tokenizer.ggml.seperator_token_id tokenizer.ggml.unknown_token_id
		tokenizer.ggml.padding_token_id tokenizer.ggml.mask_token_id`) {
		keys[k] = true
	}
	return keys
}()

// ggufTensor is one tensor info.
type ggufTensor struct {
	name    string
	infoOff int64 // file offset of the info
	nDims   int
	ne      [ggufMaxDims]int64 // ne[0] is the row length
	typ     uint32
	off     int64 // from the start of the data section
	size    int64 // bytes, or -1 when the type is unknown
	slot    *ggufSlot
}

// ggufSlot is where a tensor mote needs goes: a matrix or a vector.
type ggufSlot struct {
	rows, cols int
	mat        *core.Mat  // matrices
	min        *[]float32 // matrices that may be asymmetric (Q4_K): their minimums, (rows, groups)
	vec        *[]float32
	vecOff     int // vectors: offset of this layer's part in *vec
	optional   bool
	seen       bool
}

type ggufReader struct {
	b        *binReader
	key      []byte
	meta     map[string]*ggufValue
	actGroup int // the smallest group of the quantized matrices read, 0 if none
}

func (g *ggufReader) failAt(off int64, sentinel error, format string, a ...any) {
	if g.b.err == nil {
		g.b.err = fileErr(g.b.name, off, sentinel, format, a...)
	}
}

// readGGUF reads a GGUF file: header, metadata, tensor infos, then tensor data.
func readGGUF(b *binReader, info *Info) (*core.Model, error) {
	g, nTensors, err := readGGUFHeader(b, info)
	if err != nil {
		return nil, err
	}
	c, align := g.config()
	if b.err != nil {
		return nil, b.err
	}
	tok := g.tokenizer(c.VocabSize)
	if b.err != nil {
		return nil, b.err
	}
	m := &core.Model{Config: c, Tokenizer: tok}
	slots := ggufSlots(m)
	tensors := g.tensorInfos(nTensors, slots, c.NLayers, align)
	if b.err != nil {
		return nil, b.err
	}

	w := &m.Weights
	d, l := c.Dim, c.NLayers
	if !b.fits(int64(2*l*d+d), 2, "norm weights") { // 2: F16 norms are the smallest
		return nil, b.err
	}
	w.RmsAtt = make([]float32, l*d)
	w.RmsFFN = make([]float32, l*d)
	w.RmsFinal = make([]float32, d)
	if s := slots["output.weight"]; !s.seen {
		w.Wcls = &w.TokenEmbedding
	}
	if g.tensorData(tensors); b.err != nil {
		return nil, b.err
	}
	// llama.cpp's converters write output.weight even when it is the token
	// embedding (stories260K.gguf does): share one copy, as llama2.c does,
	// so that memory, quantization and the files written hold it once.
	if w.Wcls != &w.TokenEmbedding && identicalMats(w.Wcls, &w.TokenEmbedding) {
		w.Wcls = &w.TokenEmbedding
	}
	// llama.cpp multiplies quantized weights with activations quantized to
	// blocks of 32 (Q8_0): do the same (integer kernels), in groups that
	// divide every weight group (16 with Q6_K's sub-blocks)
	m.ActGroup = g.actGroup
	return m, nil
}

// readGGUFHeader reads the header and the metadata mote uses, and returns
// the tensor count.
func readGGUFHeader(b *binReader, info *Info) (*ggufReader, int64, error) {
	g := &ggufReader{b: b, meta: map[string]*ggufValue{}}
	var magic [4]byte
	b.full(magic[:], "magic")
	if b.err == nil && string(magic[:]) != "GGUF" {
		g.failAt(0, ErrBadMagic, "magic %q is not GGUF", magic[:])
	}
	version := b.u32("version")
	if b.err != nil {
		return nil, 0, b.err
	}
	info.Version = int(version)
	switch {
	case version == 1:
		g.failAt(4, ErrUnsupported, "GGUF version 1 (mote reads versions 2 and 3)")
	case version&0xffff == 0 && version != 0:
		g.failAt(4, ErrUnsupported, "big-endian GGUF (version field reads %#x)", version)
	case version != 2 && version != 3:
		g.failAt(4, ErrUnsupported, "GGUF version %d (mote reads versions 2 and 3)", version)
	}
	nTensors := g.count("tensor count", ggufMaxTensors, 32)
	nKV := g.count("metadata key/value count", ggufMaxKV, 13)
	if b.err != nil {
		return nil, 0, b.err
	}
	for i := int64(0); i < nKV && b.err == nil; i++ {
		g.readKV()
	}
	if b.err != nil {
		return nil, 0, b.err
	}
	return g, nTensors, nil
}

// tensorInfos reads the tensor infos, checks them against the slots and
// each other, and skips to the tensor data. The result is in file order.
func (g *ggufReader) tensorInfos(nTensors int64, slots map[string]*ggufSlot, layers int, align int64) []ggufTensor {
	b := g.b
	tensors := make([]ggufTensor, nTensors)
	for i := range tensors {
		g.tensorInfo(&tensors[i], slots, layers)
		if b.err != nil {
			return nil
		}
	}
	// the data section starts at the next multiple of the alignment; the
	// tensors are read in the order they are stored
	pad := (align - b.off%align) % align
	dataStart := b.off + pad
	slices.SortStableFunc(tensors, func(x, y ggufTensor) int { return cmp.Compare(x.off, y.off) })
	g.checkTensors(tensors, slots, align, dataStart)
	if b.err != nil {
		return nil
	}
	b.skip(pad, "padding before the tensor data")
	return tensors
}

// tensorData reads the needed tensors, in file order, into their slots.
func (g *ggufReader) tensorData(tensors []ggufTensor) {
	b := g.b
	var pos int64 // bytes of the data section consumed
	for i := range tensors {
		t := &tensors[i]
		if t.slot == nil {
			continue
		}
		if t.off < pos { // checkTensors excludes this; a stream cannot go back
			g.failAt(t.infoOff, ErrCorrupt, "tensor %s overlaps the tensor before it", t.name)
			return
		}
		b.skip(t.off-pos, "gap before tensor "+t.name)
		g.readTensor(t)
		pos = t.off + t.size
		if b.err != nil {
			return
		}
	}
}

// count reads a uint64 count and bounds it by limit and by what the rest of
// the file can hold at minSize bytes per item.
func (g *ggufReader) count(what string, limit, minSize int64) int64 {
	b := g.b
	off := b.off
	n := b.u64(what)
	if b.err != nil {
		return 0
	}
	if n > uint64(limit) {
		g.failAt(off, ErrLimit, "%s %d exceeds the limit %d", what, n, limit)
		return 0
	}
	if rem := b.remaining(); rem >= 0 && minSize > 0 && int64(n) > rem/minSize {
		g.failAt(off, ErrTruncated, "%s %d needs at least %d bytes, %d left", what, n, int64(n)*minSize, rem)
		return 0
	}
	return int64(n)
}

// str reads a length-prefixed string of at most limit bytes into g.key's
// buffer (valid until the next call).
func (g *ggufReader) str(what string, limit int64) []byte {
	b := g.b
	off := b.off
	n := b.u64(what + " length")
	if b.err != nil {
		return nil
	}
	if n > uint64(limit) {
		g.failAt(off, ErrLimit, "%s: length %d exceeds the limit %d", what, n, limit)
		return nil
	}
	if rem := b.remaining(); rem >= 0 && int64(n) > rem {
		g.failAt(off, ErrTruncated, "%s: length %d, %d bytes left", what, n, rem)
		return nil
	}
	if cap(g.key) < int(n) {
		g.key = make([]byte, n)
	}
	g.key = g.key[:n]
	b.full(g.key, what)
	return g.key
}

// readKV reads one metadata pair, keeping the value if mote uses the key.
func (g *ggufReader) readKV() {
	b := g.b
	off := b.off
	key := string(g.str("metadata key", ggufMaxKey))
	typ := b.u32("value type of key " + key)
	if b.err != nil {
		return
	}
	if typ >= ggufNumTypes {
		g.failAt(off, ErrCorrupt, "key %q has unknown value type %d", key, typ)
		return
	}
	if !ggufKeys[key] {
		g.skipValue(typ, key, 0)
		return
	}
	if _, dup := g.meta[key]; dup {
		g.failAt(off, ErrCorrupt, "key %q appears twice", key)
		return
	}
	v := &ggufValue{typ: typ, off: off}
	switch typ {
	case ggufString:
		v.s = string(g.str("value of key "+key, ggufMaxString))
	case ggufArray:
		g.array(v, key)
	default:
		v.u, v.i, v.f = g.scalar(typ, key)
	}
	g.meta[key] = v
}

// scalar reads a fixed-size value as unsigned, signed and float views.
func (g *ggufReader) scalar(t uint32, key string) (uint64, int64, float64) {
	b := g.b
	what := "value of key " + key
	switch t {
	case ggufU8, ggufBool:
		u := b.u8(what)
		return uint64(u), int64(u), float64(u)
	case ggufI8:
		i := int8(b.u8(what))
		return uint64(i), int64(i), float64(i)
	case ggufU16:
		u := b.u16(what)
		return uint64(u), int64(u), float64(u)
	case ggufI16:
		i := int16(b.u16(what))
		return uint64(i), int64(i), float64(i)
	case ggufU32:
		u := b.u32(what)
		return uint64(u), int64(u), float64(u)
	case ggufI32:
		i := b.i32(what)
		return uint64(i), int64(i), float64(i)
	case ggufU64:
		u := b.u64(what)
		return u, int64(u), float64(u)
	case ggufI64:
		i := int64(b.u64(what))
		return uint64(i), i, float64(i)
	case ggufF32:
		f := float64(b.f32(what))
		return 0, 0, f
	case ggufF64:
		f := math.Float64frombits(b.u64(what))
		return 0, 0, f
	}
	return 0, 0, 0
}

// array reads the header of an array value; the vocabulary's pieces and
// scores are kept, everything else is skipped and only its shape noted.
func (g *ggufReader) array(v *ggufValue, key string) {
	b := g.b
	v.elem = b.u32("element type of key " + key)
	if b.err != nil {
		return
	}
	if v.elem >= ggufNumTypes {
		g.failAt(v.off, ErrCorrupt, "array key %q has unknown element type %d", key, v.elem)
		return
	}
	v.n = g.count("element count of key "+key, ggufMaxArray, ggufMinSize(v.elem))
	if b.err != nil {
		return
	}
	switch {
	case key == "tokenizer.ggml.tokens" && v.elem == ggufString:
		if v.n > core.MaxVocab {
			g.failAt(v.off, ErrLimit, "%s has %d tokens, more than the limit %d", key, v.n, core.MaxVocab)
			return
		}
		v.strs = make([]string, v.n)
		for i := range v.strs {
			v.strs[i] = string(g.str("token", maxTokenBytes))
			if b.err != nil {
				return
			}
		}
	case key == "tokenizer.ggml.scores" && v.elem == ggufF32:
		if v.n > core.MaxVocab {
			g.failAt(v.off, ErrLimit, "%s has %d scores, more than the limit %d", key, v.n, core.MaxVocab)
			return
		}
		v.f32s = b.f32s(v.n, key)
	case key == "tokenizer.ggml.token_type" && v.elem == ggufI32:
		if v.n > core.MaxVocab {
			g.failAt(v.off, ErrLimit, "%s has %d types, more than the limit %d", key, v.n, core.MaxVocab)
			return
		}
		if b.fits(v.n, 4, key) {
			v.i32s = make([]int32, v.n)
			b.full(i32Bytes(v.i32s), key)
		}
	default:
		g.skipElems(v.elem, v.n, key, 1)
	}
}

// skipValue discards one value of type t.
func (g *ggufReader) skipValue(t uint32, key string, depth int) {
	b := g.b
	switch t {
	case ggufString:
		off := b.off
		n := b.u64("string length in key " + key)
		if b.err == nil && n > ggufMaxString {
			g.failAt(off, ErrLimit, "string of %d bytes in key %q exceeds the limit %d", n, key, ggufMaxString)
		}
		b.skip(int64(n), "string in key "+key)
	case ggufArray:
		off := b.off
		if depth >= ggufMaxDepth {
			g.failAt(off, ErrLimit, "key %q nests arrays more than %d deep", key, ggufMaxDepth)
			return
		}
		elem := b.u32("array element type in key " + key)
		if b.err == nil && elem >= ggufNumTypes {
			g.failAt(off, ErrCorrupt, "array in key %q has unknown element type %d", key, elem)
		}
		n := g.count("array length in key "+key, ggufMaxArray, ggufMinSize(elem))
		g.skipElems(elem, n, key, depth+1)
	default:
		b.skip(ggufScalarSize(t), "value of key "+key)
	}
}

// skipElems discards n array elements of type t.
func (g *ggufReader) skipElems(t uint32, n int64, key string, depth int) {
	if sz := ggufScalarSize(t); sz > 0 {
		g.b.skip(n*sz, "array in key "+key) // n*sz <= ggufMaxArray*8: no overflow
		return
	}
	for i := int64(0); i < n && g.b.err == nil; i++ {
		g.skipValue(t, key, depth)
	}
}

// Typed access to metadata. A missing optional key yields def.

func (g *ggufReader) getString(key string, required bool) (string, bool) {
	v := g.meta[key]
	if v == nil {
		if required {
			g.failAt(g.b.off, ErrCorrupt, "missing metadata key %s", key)
		}
		return "", false
	}
	if v.typ != ggufString {
		g.failAt(v.off, ErrCorrupt, "key %s is a %s, want a string", key, ggufTypeName(v.typ))
		return "", false
	}
	return v.s, true
}

// getInt reads an integer key (of any integer type) as a non-negative int.
func (g *ggufReader) getInt(key string, required bool, def int) int {
	v := g.meta[key]
	if v == nil {
		if required {
			g.failAt(g.b.off, ErrCorrupt, "missing metadata key %s", key)
		}
		return def
	}
	switch v.typ {
	case ggufI8, ggufI16, ggufI32, ggufI64:
		if v.i < 0 {
			g.failAt(v.off, ErrCorrupt, "key %s is negative (%d)", key, v.i)
			return def
		}
	case ggufU8, ggufU16, ggufU32, ggufU64:
	default:
		g.failAt(v.off, ErrCorrupt, "key %s is a %s, want an integer", key, ggufTypeName(v.typ))
		return def
	}
	if v.u > math.MaxInt32 {
		g.failAt(v.off, ErrLimit, "key %s = %d exceeds the limit %d", key, v.u, math.MaxInt32)
		return def
	}
	return int(v.u)
}

// getFloat reads a float32 or float64 key.
func (g *ggufReader) getFloat(key string, required bool, def float32) float32 {
	v := g.meta[key]
	if v == nil {
		if required {
			g.failAt(g.b.off, ErrCorrupt, "missing metadata key %s", key)
		}
		return def
	}
	if v.typ != ggufF32 && v.typ != ggufF64 {
		g.failAt(v.off, ErrCorrupt, "key %s is a %s, want a float", key, ggufTypeName(v.typ))
		return def
	}
	return float32(v.f)
}

// config builds the model's shape from the llama.* keys and reads the alignment.
func (g *ggufReader) config() (core.Config, int64) {
	b := g.b
	arch, _ := g.getString("general.architecture", true)
	if b.err != nil {
		return core.Config{}, 0
	}
	if arch == "bert" {
		g.failAt(g.meta["general.architecture"].off, ErrUnsupported,
			"architecture bert is a sentence encoder, not a language model (use mote embed; models.OpenEncoder)")
		return core.Config{}, 0
	}
	if arch != "llama" {
		g.failAt(g.meta["general.architecture"].off, ErrUnsupported, "architecture %q (mote reads llama, and bert as an encoder)", arch)
		return core.Config{}, 0
	}
	align := g.getInt("general.alignment", false, ggufDefaultAlign)
	if b.err == nil && (align <= 0 || align > ggufMaxAlign || align&(align-1) != 0) {
		g.failAt(g.meta["general.alignment"].off, ErrCorrupt, "general.alignment %d is not a power of two in 1..%d", align, ggufMaxAlign)
	}
	var c core.Config
	c.Dim = g.getInt("llama.embedding_length", true, 0)
	c.HiddenDim = g.getInt("llama.feed_forward_length", true, 0)
	c.NLayers = g.getInt("llama.block_count", true, 0)
	c.NHeads = g.getInt("llama.attention.head_count", true, 0)
	c.NKVHeads = g.getInt("llama.attention.head_count_kv", false, c.NHeads)
	c.SeqLen = g.getInt("llama.context_length", true, 0)
	c.NormEps = g.getFloat("llama.attention.layer_norm_rms_epsilon", true, 0)
	c.RopeTheta = g.getFloat("llama.rope.freq_base", false, 10000)
	// a head size of its own (heads narrower or wider than dim/n_heads);
	// absent or equal to dim/n_heads it stays implied
	if hs := g.getInt("llama.attention.key_length", false, 0); b.err == nil && hs != 0 &&
		(c.NHeads <= 0 || c.Dim%c.NHeads != 0 || hs != c.Dim/c.NHeads) {
		c.HeadDim = hs
	}
	switch tokens := g.meta["tokenizer.ggml.tokens"]; {
	case b.err != nil:
	case tokens == nil:
		g.failAt(b.off, ErrCorrupt, "missing metadata key tokenizer.ggml.tokens (the vocabulary)")
	case tokens.typ != ggufArray || tokens.elem != ggufString:
		g.failAt(tokens.off, ErrCorrupt, "tokenizer.ggml.tokens is a %s, want an array of strings", ggufTypeName(tokens.typ))
	default:
		c.VocabSize = len(tokens.strs)
	}
	if b.err != nil {
		return c, 0
	}
	if err := c.Validate(); err != nil {
		g.failAt(b.off, ErrLimit, "%v", err)
		return c, 0
	}
	g.unsupported(c)
	return c, int64(align)
}

// unsupported refuses llama variants whose arithmetic mote's forward pass
// does not do, rather than run them wrongly.
func (g *ggufReader) unsupported(c core.Config) {
	hs := c.HeadSize()
	for _, key := range []string{"llama.rope.dimension_count", "llama.attention.key_length", "llama.attention.value_length"} {
		if v := g.getInt(key, false, hs); v != hs && g.b.err == nil {
			g.failAt(g.meta[key].off, ErrUnsupported, "%s %d differs from the head size %d", key, v, hs)
		}
	}
	if n := g.getInt("llama.vocab_size", false, c.VocabSize); n != c.VocabSize && g.b.err == nil {
		g.failAt(g.meta["llama.vocab_size"].off, ErrCorrupt, "llama.vocab_size %d, but tokenizer.ggml.tokens has %d tokens", n, c.VocabSize)
	}
	if n := g.getInt("llama.expert_count", false, 0); n > 0 && g.b.err == nil {
		g.failAt(g.meta["llama.expert_count"].off, ErrUnsupported, "mixture of %d experts", n)
	}
	if s, ok := g.getString("llama.rope.scaling.type", false); ok && s != "none" && g.b.err == nil {
		g.failAt(g.meta["llama.rope.scaling.type"].off, ErrUnsupported, "rope scaling %q", s)
	}
	for _, key := range []string{"llama.rope.scale_linear", "llama.rope.scaling.factor"} {
		if f := g.getFloat(key, false, 1); f != 1 && f != 0 && g.b.err == nil {
			g.failAt(g.meta[key].off, ErrUnsupported, "%s %g (rope scaling)", key, f)
		}
	}
}

// tokenizer builds llama2.c's vocabulary from the embedded SentencePiece one,
// converting pieces as llama2.c's tokenizer export does.
func (g *ggufReader) tokenizer(n int) *core.Tokenizer {
	b := g.b
	model, _ := g.getString("tokenizer.ggml.model", true)
	if b.err != nil {
		return nil
	}
	if model != "llama" {
		g.failAt(g.meta["tokenizer.ggml.model"].off, ErrUnsupported, "tokenizer model %q (mote reads llama, SentencePiece BPE)", model)
		return nil
	}
	tokens, scores := g.meta["tokenizer.ggml.tokens"], g.meta["tokenizer.ggml.scores"]
	if scores == nil {
		g.failAt(b.off, ErrCorrupt, "missing metadata key tokenizer.ggml.scores")
		return nil
	}
	if scores.typ != ggufArray || scores.elem != ggufF32 || scores.n != int64(n) {
		g.failAt(scores.off, ErrCorrupt, "tokenizer.ggml.scores is not an array of %d float32 (%s of %s, %d)",
			n, ggufTypeName(scores.typ), ggufTypeName(scores.elem), scores.n)
		return nil
	}
	if tt := g.meta["tokenizer.ggml.token_type"]; tt != nil &&
		(tt.typ != ggufArray || tt.elem != ggufI32 || tt.n != int64(n)) {
		g.failAt(tt.off, ErrCorrupt, "tokenizer.ggml.token_type is not an array of %d int32", n)
		return nil
	}
	bos := g.getInt("tokenizer.ggml.bos_token_id", false, 1)
	eos := g.getInt("tokenizer.ggml.eos_token_id", false, 2)
	if b.err != nil {
		return nil
	}
	vocab := tokens.strs
	for i, p := range vocab {
		switch i {
		case bos:
			p = "\n<s>\n"
		case eos:
			p = "\n</s>\n"
		}
		vocab[i] = strings.ReplaceAll(p, "\u2581", " ")
	}
	t, err := core.NewTokenizer(vocab, scores.f32s, bos, eos)
	if err != nil {
		g.failAt(tokens.off, ErrCorrupt, "%v", err)
		return nil
	}
	return t
}

// ggufSlots allocates the model's matrices (empty) and maps llama.cpp's
// tensor names to where each one goes.
func ggufSlots(m *core.Model) map[string]*ggufSlot {
	c, w := &m.Config, &m.Weights
	d, h, kv, q, l, v := c.Dim, c.HiddenDim, c.KVDim(), c.QDim(), c.NLayers, c.VocabSize
	slots := make(map[string]*ggufSlot, 3+9*l)
	mat := func(name string, dst *core.Mat, rows, cols int) {
		slots[name] = &ggufSlot{rows: rows, cols: cols, mat: dst}
	}
	vec := func(name string, dst *[]float32, off, n int) {
		slots[name] = &ggufSlot{rows: 1, cols: n, vec: dst, vecOff: off}
	}
	mat("token_embd.weight", &w.TokenEmbedding, v, d)
	cls := new(core.Mat)
	w.Wcls = cls
	mat("output.weight", cls, v, d)
	slots["output.weight"].optional = true
	vec("output_norm.weight", &w.RmsFinal, 0, d)
	for _, p := range []*[]core.Mat{&w.Wq, &w.Wk, &w.Wv, &w.Wo, &w.W1, &w.W2, &w.W3} {
		*p = make([]core.Mat, l)
	}
	for i := 0; i < l; i++ {
		blk := "blk." + strconv.Itoa(i) + "."
		vec(blk+"attn_norm.weight", &w.RmsAtt, i*d, d)
		mat(blk+"attn_q.weight", &w.Wq[i], q, d)
		mat(blk+"attn_k.weight", &w.Wk[i], kv, d)
		mat(blk+"attn_v.weight", &w.Wv[i], kv, d)
		mat(blk+"attn_output.weight", &w.Wo[i], d, q)
		vec(blk+"ffn_norm.weight", &w.RmsFFN, i*d, d)
		mat(blk+"ffn_gate.weight", &w.W1[i], h, d)
		mat(blk+"ffn_down.weight", &w.W2[i], d, h)
		mat(blk+"ffn_up.weight", &w.W3[i], h, d)
	}
	return slots
}

// tensorInfo reads one tensor info and checks it against its slot.
func (g *ggufReader) tensorInfo(t *ggufTensor, slots map[string]*ggufSlot, layers int) {
	b := g.b
	t.infoOff = b.off
	t.name = string(g.str("tensor name", ggufMaxName))
	nDims := b.u32("n_dims of tensor " + t.name)
	if b.err != nil {
		return
	}
	if nDims == 0 || nDims > ggufMaxDims {
		g.failAt(t.infoOff, ErrLimit, "tensor %s has %d dimensions (1..%d)", t.name, nDims, ggufMaxDims)
		return
	}
	t.nDims = int(nDims)
	elems := int64(1)
	for i := 0; i < t.nDims; i++ {
		n := b.u64("dimension of tensor " + t.name)
		if b.err != nil {
			return
		}
		if n > ggufMaxElems || n != 0 && elems > ggufMaxElems/int64(n) {
			g.failAt(t.infoOff, ErrLimit, "tensor %s: dimension %d is %d, more than %d elements in all", t.name, i, n, int64(ggufMaxElems))
			return
		}
		t.ne[i] = int64(n)
		elems *= int64(n)
	}
	for i := t.nDims; i < ggufMaxDims; i++ {
		t.ne[i] = 1
	}
	t.typ = b.u32("type of tensor " + t.name)
	off := b.u64("offset of tensor " + t.name)
	if b.err != nil {
		return
	}
	if off > math.MaxInt64/2 {
		g.failAt(t.infoOff, ErrCorrupt, "tensor %s: offset %d is absurd", t.name, off)
		return
	}
	t.off = int64(off)
	t.size = -1
	if tt, ok := ggmlTypes[t.typ]; ok {
		if t.ne[0]%tt.elems != 0 {
			g.failAt(t.infoOff, ErrCorrupt, "tensor %s: row length %d is not a multiple of %s's block of %d",
				t.name, t.ne[0], tt.name, tt.elems)
			return
		}
		t.size = elems / tt.elems * tt.bytes
	}

	s := slots[t.name]
	if s == nil {
		g.unknownTensor(t, layers)
		return
	}
	if s.seen {
		g.failAt(t.infoOff, ErrCorrupt, "tensor %s listed twice", t.name)
		return
	}
	s.seen = true
	t.slot = s
	if t.ne[0] != int64(s.cols) || t.ne[1] != int64(s.rows) || t.ne[2] != 1 || t.ne[3] != 1 {
		want := fmt.Sprintf("[%d %d]", s.cols, s.rows)
		if s.vec != nil {
			want = fmt.Sprintf("[%d]", s.cols)
		}
		g.failAt(t.infoOff, ErrCorrupt, "tensor %s has shape %v, want %s (ne[0] first)", t.name, t.ne[:t.nDims], want)
		return
	}
	switch {
	case t.typ == ggmlF32 || t.typ == ggmlF16:
	case s.mat != nil && (t.typ == ggmlQ8_0 || t.typ == ggmlQ5_0 || t.typ == ggmlQ6_K):
	case s.mat != nil && t.typ == ggmlQ4_K && s.min != nil:
	case s.mat != nil && t.typ == ggmlQ4_K:
		g.failAt(t.infoOff, ErrUnsupported, "tensor %s is Q4_K, whose per-group minimums only mote's encoder holds (re-quantize the model with llama-quantize to Q8_0, Q5_0 or Q6_K)", t.name)
	default:
		kind := "matrices F32, F16, Q8_0, Q5_0, Q6_K (and Q4_K in encoders)"
		if s.vec != nil {
			kind = "norm vectors F32 or F16" // biases too, in an encoder
		}
		g.failAt(t.infoOff, ErrUnsupported, "tensor %s is %s (mote reads %s)", t.name, ggmlTypeName(t.typ), kind)
	}
}

// unknownTensor decides about a tensor mote has no slot for: a part of a
// layer it does not compute (a bias, say) is refused, since ignoring it would
// compute something else; anything else is skipped.
func (g *ggufReader) unknownTensor(t *ggufTensor, layers int) {
	if t.name == "rope_freqs.weight" {
		g.failAt(t.infoOff, ErrUnsupported, "tensor %s: rope frequency factors (rope scaling)", t.name)
		return
	}
	rest, ok := strings.CutPrefix(t.name, "blk.")
	if !ok {
		return
	}
	num, part, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(num)
	switch {
	case err != nil || n < 0 || strconv.Itoa(n) != num:
		g.failAt(t.infoOff, ErrCorrupt, "tensor %s: bad layer number", t.name)
	case n >= layers:
		g.failAt(t.infoOff, ErrCorrupt, "tensor %s is for layer %d, but llama.block_count is %d", t.name, n, layers)
	case part == "attn_rot_embd.weight": // unused by llama.cpp too
	default:
		g.failAt(t.infoOff, ErrUnsupported, "tensor %s: mote's llama has no such weight", t.name)
	}
}

// checkTensors checks, before any data is read, that every needed tensor is
// there, and every tensor aligned, inside the file and (when mote knows its
// size) not overlapping another. ts is sorted by offset.
func (g *ggufReader) checkTensors(ts []ggufTensor, slots map[string]*ggufSlot, align, dataStart int64) {
	b := g.b
	var missing []string
	for name, s := range slots {
		if !s.seen && !s.optional {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		more := ""
		if len(missing) > 5 {
			more = fmt.Sprintf(" and %d more", len(missing)-5)
			missing = missing[:5]
		}
		g.failAt(b.off, ErrCorrupt, "missing tensor %s%s", strings.Join(missing, ", "), more)
		return
	}
	if b.size >= 0 && dataStart > b.size {
		g.failAt(b.off, ErrTruncated, "tensor data would start at %d, file has %d bytes", dataStart, b.size)
		return
	}
	for i := range ts {
		t := &ts[i]
		if t.off%align != 0 {
			g.failAt(t.infoOff, ErrCorrupt, "tensor %s: offset %d is not a multiple of the alignment %d", t.name, t.off, align)
			return
		}
		end := dataStart + t.off
		if t.size > 0 {
			end += t.size
		}
		if b.size >= 0 && end > b.size {
			g.failAt(t.infoOff, ErrTruncated, "tensor %s ends at byte %d, file has %d", t.name, end, b.size)
			return
		}
	}
	last := -1 // the tensor of known size reaching furthest so far
	for i := range ts {
		t := &ts[i]
		if t.size <= 0 {
			continue
		}
		if last >= 0 && t.off < ts[last].off+ts[last].size {
			g.failAt(t.infoOff, ErrCorrupt, "tensor %s (bytes %d..%d of the data) overlaps tensor %s (%d..%d)",
				t.name, t.off, t.off+t.size, ts[last].name, ts[last].off, ts[last].off+ts[last].size)
			return
		}
		if last < 0 || t.off+t.size > ts[last].off+ts[last].size {
			last = i
		}
	}
}

// readTensor reads one needed tensor's data into its slot.
func (g *ggufReader) readTensor(t *ggufTensor) {
	b := g.b
	s := t.slot
	n := int64(s.rows) * int64(s.cols)
	if s.vec != nil {
		dst := (*s.vec)[s.vecOff : s.vecOff+s.cols]
		switch t.typ {
		case ggmlF32:
			b.full(f32Bytes(dst), t.name)
		case ggmlF16:
			g.readF16(dst, t.name)
		}
		return
	}
	switch t.typ {
	case ggmlF32:
		*s.mat = core.NewMatF32(s.rows, s.cols, b.f32s(n, t.name))
	case ggmlF16:
		if !b.fits(n, 2, t.name) {
			return
		}
		f := make([]float32, n)
		g.readF16(f, t.name)
		*s.mat = core.NewMatF32(s.rows, s.cols, f)
	default:
		g.readBlocks(t)
	}
}

// readF16 reads len(dst) halves into dst, widening them in place: the halves
// land in the upper half of dst's bytes, and converting front to back never
// overwrites a half before it is read.
func (g *ggufReader) readF16(dst []float32, what string) {
	n := len(dst)
	raw := f32Bytes(dst)[2*n:]
	g.b.full(raw, what)
	if g.b.err != nil {
		return
	}
	for i := range dst {
		dst[i] = halfToFloat32(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
	}
}

// halfToFloat32 widens an IEEE 754 binary16 value exactly: subnormals become
// normal float32s, infinities stay infinite, NaNs keep sign and payload.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf, nan
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias 15 -> 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// subnormal: mant * 2^-24; shift the leading 1 up to the hidden bit
	e := uint32(113) // exponent field of 2^-14
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// identicalMats reports whether two matrices hold bit-identical values.
func identicalMats(a, b *core.Mat) bool {
	if a.Type != b.Type || a.Rows != b.Rows || a.Cols != b.Cols || a.GroupSize != b.GroupSize || a.Codebook != b.Codebook {
		return false
	}
	return bytes.Equal(f32Bytes(a.F), f32Bytes(b.F)) && bytes.Equal(i8Bytes(a.Q), i8Bytes(b.Q)) &&
		bytes.Equal(a.P, b.P) && bytes.Equal(f32Bytes(a.S), f32Bytes(b.S))
}
