package models

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"

	"mote/core"
)

// Encoders: BERT sentence-embedding models (core.Bert), from GGUF
// (architecture "bert", as llama.cpp's converter writes all-MiniLM-L6-v2 and
// its kin) or from mote's container (container_bert.go).
//
// What GGUF's bert architecture may say and mote refuses: causal attention,
// pooling other than mean (bert.pooling_type 1), a tokenizer other than
// WordPiece ("bert"). The position embeddings fix the longest input
// (bert.context_length).

// OpenEncoder reads an encoder model file: GGUF or a mote container.
func OpenEncoder(path string) (*core.Bert, *Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return nil, nil, fmt.Errorf("%s: is a directory, not a model file", path)
	}
	return ReadEncoder(path, f, st.Size())
}

// ReadEncoderBytes reads an encoder held in memory (the browser and worker builds).
func ReadEncoderBytes(name string, data []byte) (*core.Bert, *Info, error) {
	return ReadEncoder(name, bytes.NewReader(data), int64(len(data)))
}

// ReadEncoder reads an encoder from r; size is the number of bytes r
// yields, or -1 when unknown.
func ReadEncoder(name string, r io.Reader, size int64) (*core.Bert, *Info, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(4)
	if len(head) < 4 {
		return nil, nil, fileErr(name, 0, ErrTruncated, "file has %d bytes, too short for any model format", len(head))
	}
	b := newBinReader(name, br, size)
	info := &Info{FileBytes: size, Checksums: "none", Compress: "none"}
	var m *core.Bert
	var err error
	switch string(head) {
	case "GGUF":
		info.Format = FormatGGUF
		m, err = readGGUFBert(b, info)
	case moteMagic:
		info.Format = FormatMote
		m, err = readEncoderContainer(b, info)
	default:
		return nil, nil, fileErr(name, 0, ErrBadMagic, "magic %q: an encoder is a GGUF or a mote container", head)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, nil, fileErr(name, b.off, ErrCorrupt, "%v", err)
	}
	return m, info, nil
}

// IsEncoder reports whether data starts like an encoder model: a GGUF
// whose architecture is bert, or a mote encoder container. It reads only
// the header (hosts use it to route a file to the right loader).
func IsEncoder(data []byte) bool {
	switch {
	case len(data) >= 4 && string(data[:4]) == "GGUF":
		b := newBinReader("", bytes.NewReader(data), int64(len(data)))
		g, _, err := readGGUFHeader(b, &Info{})
		if err != nil {
			return false
		}
		arch, _ := g.getString("general.architecture", false)
		return arch == "bert"
	case len(data) >= 4 && string(data[:4]) == moteMagic:
		return isEncoderContainer(data)
	}
	return false
}

// readGGUFBert reads a GGUF bert model.
func readGGUFBert(b *binReader, info *Info) (*core.Bert, error) {
	g, nTensors, err := readGGUFHeader(b, info)
	if err != nil {
		return nil, err
	}
	c, align := g.bertConfig()
	if b.err != nil {
		return nil, b.err
	}
	tok := g.wordPiece(c.VocabSize)
	if b.err != nil {
		return nil, b.err
	}
	m := &core.Bert{Config: c, Tokenizer: tok}
	// vectors (biases, norms) are allocated before the data is read: bound
	// them by the file first (4 bytes: the reader takes F32 or F16, count 2)
	d, h, l := int64(c.Dim), int64(c.HiddenDim), int64(c.NLayers)
	if !b.fits(2*d+l*(9*d+h), 2, "bias and norm vectors") {
		return nil, b.err
	}
	slots := bertSlots(m)
	tensors := g.tensorInfos(nTensors, slots, c.NLayers, align)
	if b.err != nil {
		return nil, b.err
	}
	if g.tensorData(tensors); b.err != nil {
		return nil, b.err
	}
	// int8 activations in blocks of 32, as llama.cpp quantizes them for
	// Q8_0/Q5_0 (Q6_K's matrices take groups of 16: core.Bert.ActGroup)
	if g.actGroup > 0 {
		m.ActGroup = 32
	}
	return m, nil
}

// bertConfig builds the encoder's shape from the bert.* keys.
func (g *ggufReader) bertConfig() (core.BertConfig, int64) {
	b := g.b
	arch, _ := g.getString("general.architecture", true)
	if b.err != nil {
		return core.BertConfig{}, 0
	}
	if arch != "bert" {
		g.failAt(g.meta["general.architecture"].off, ErrUnsupported, "architecture %q is not an encoder (mote embeds with bert)", arch)
		return core.BertConfig{}, 0
	}
	align := g.getInt("general.alignment", false, ggufDefaultAlign)
	if b.err == nil && (align <= 0 || align > ggufMaxAlign || align&(align-1) != 0) {
		g.failAt(g.meta["general.alignment"].off, ErrCorrupt, "general.alignment %d is not a power of two in 1..%d", align, ggufMaxAlign)
	}
	var c core.BertConfig
	c.Dim = g.getInt("bert.embedding_length", true, 0)
	c.HiddenDim = g.getInt("bert.feed_forward_length", true, 0)
	c.NLayers = g.getInt("bert.block_count", true, 0)
	c.NHeads = g.getInt("bert.attention.head_count", true, 0)
	c.SeqLen = g.getInt("bert.context_length", true, 0)
	c.NormEps = g.getFloat("bert.attention.layer_norm_epsilon", true, 0)
	c.TypeVocab = g.getInt("tokenizer.ggml.token_type_count", false, 2)
	if kv := g.getInt("bert.attention.head_count_kv", false, c.NHeads); kv != c.NHeads && b.err == nil {
		g.failAt(g.meta["bert.attention.head_count_kv"].off, ErrUnsupported, "bert with %d key/value heads for %d query heads", kv, c.NHeads)
	}
	if v := g.meta["bert.attention.causal"]; v != nil && b.err == nil {
		if v.typ != ggufBool {
			g.failAt(v.off, ErrCorrupt, "bert.attention.causal is a %s, want a bool", ggufTypeName(v.typ))
		} else if v.u != 0 {
			g.failAt(v.off, ErrUnsupported, "causal attention in an encoder")
		}
	}
	if p := g.getInt("bert.pooling_type", false, 1); p != 1 && b.err == nil {
		g.failAt(g.meta["bert.pooling_type"].off, ErrUnsupported, "pooling type %d (mote pools by the mean, type 1)", p)
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
	if n := g.getInt("bert.vocab_size", false, c.VocabSize); n != c.VocabSize && b.err == nil {
		g.failAt(g.meta["bert.vocab_size"].off, ErrCorrupt, "bert.vocab_size %d, but tokenizer.ggml.tokens has %d tokens", n, c.VocabSize)
	}
	if b.err != nil {
		return c, 0
	}
	if err := c.Validate(); err != nil {
		g.failAt(b.off, ErrLimit, "%v", err)
		return c, 0
	}
	return c, int64(align)
}

// GGUF token types (llama.cpp's llama_token_type).
const (
	ggufTokNormal      = 1
	ggufTokUnknown     = 2
	ggufTokControl     = 3
	ggufTokUserDefined = 4
)

// wordPiece builds the WordPiece tokenizer from the embedded vocabulary:
// the pieces as they are, the special tokens from the token types.
func (g *ggufReader) wordPiece(n int) *core.WordPiece {
	b := g.b
	model, _ := g.getString("tokenizer.ggml.model", true)
	if b.err != nil {
		return nil
	}
	if model != "bert" {
		g.failAt(g.meta["tokenizer.ggml.model"].off, ErrUnsupported, "tokenizer model %q (an encoder needs bert, WordPiece)", model)
		return nil
	}
	tt := g.meta["tokenizer.ggml.token_type"]
	if tt == nil {
		g.failAt(b.off, ErrCorrupt, "missing metadata key tokenizer.ggml.token_type (which tokens are special)")
		return nil
	}
	if tt.typ != ggufArray || tt.elem != ggufI32 || tt.n != int64(n) {
		g.failAt(tt.off, ErrCorrupt, "tokenizer.ggml.token_type is not an array of %d int32", n)
		return nil
	}
	var special []int
	for i, t := range tt.i32s {
		if t == ggufTokUnknown || t == ggufTokControl || t == ggufTokUserDefined {
			special = append(special, i)
		}
	}
	id := func(key string, required bool) int {
		v := g.getInt(key, required, -1)
		if v >= n && b.err == nil {
			g.failAt(g.meta[key].off, ErrCorrupt, "%s %d outside the vocabulary of %d", key, v, n)
		}
		return v
	}
	cls := id("tokenizer.ggml.cls_token_id", true)
	sep := id("tokenizer.ggml.seperator_token_id", true) // sic: llama.cpp's key
	unk := id("tokenizer.ggml.unknown_token_id", true)
	pad := id("tokenizer.ggml.padding_token_id", false)
	mask := id("tokenizer.ggml.mask_token_id", false)
	if b.err != nil {
		return nil
	}
	t, err := core.NewWordPiece(g.meta["tokenizer.ggml.tokens"].strs, special, cls, sep, unk, pad, mask)
	if err != nil {
		g.failAt(g.meta["tokenizer.ggml.tokens"].off, ErrCorrupt, "%v", err)
		return nil
	}
	return t
}

// bertSlots allocates the encoder's vectors and empty matrices and maps
// llama.cpp's tensor names to where each one goes.
func bertSlots(m *core.Bert) map[string]*ggufSlot {
	c, w := &m.Config, &m.Weights
	d, h, l := c.Dim, c.HiddenDim, c.NLayers
	slots := make(map[string]*ggufSlot, 5+16*l)
	mat := func(name string, dst *core.Mat, rows, cols int) {
		slots[name] = &ggufSlot{rows: rows, cols: cols, mat: dst}
	}
	vec := func(name string, dst *[]float32, n int) {
		*dst = make([]float32, n)
		slots[name] = &ggufSlot{rows: 1, cols: n, vec: dst}
	}
	lin := func(name string, dst *core.Linear, rows, cols int) {
		slots[name+".weight"] = &ggufSlot{rows: rows, cols: cols, mat: &dst.W, min: &dst.Min}
		vec(name+".bias", &dst.B, rows)
	}
	mat("token_embd.weight", &w.TokenEmbedding, c.VocabSize, d)
	mat("position_embd.weight", &w.PosEmbedding, c.SeqLen, d)
	mat("token_types.weight", &w.TypeEmbedding, c.TypeVocab, d)
	vec("token_embd_norm.weight", &w.EmbNorm, d)
	vec("token_embd_norm.bias", &w.EmbNormB, d)
	w.Layers = make([]core.BertLayer, l)
	for i := range w.Layers {
		ly := &w.Layers[i]
		blk := "blk." + strconv.Itoa(i) + "."
		lin(blk+"attn_q", &ly.Wq, d, d)
		lin(blk+"attn_k", &ly.Wk, d, d)
		lin(blk+"attn_v", &ly.Wv, d, d)
		lin(blk+"attn_output", &ly.Wo, d, d)
		vec(blk+"attn_output_norm.weight", &ly.AttNorm, d)
		vec(blk+"attn_output_norm.bias", &ly.AttNormB, d)
		lin(blk+"ffn_up", &ly.Up, h, d)
		lin(blk+"ffn_down", &ly.Down, d, h)
		vec(blk+"layer_output_norm.weight", &ly.OutNorm, d)
		vec(blk+"layer_output_norm.bias", &ly.OutNormB, d)
	}
	return slots
}
