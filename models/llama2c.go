package models

import (
	"fmt"
	"io"

	"mote/core"
)

// llama2.c's versioned checkpoints start with this magic ("ak42" as LE uint32).
const ak42Magic = 0x616b3432

// readLlama2cConfig reads the 7-int32 config shared by all llama2.c formats.
// A negative vocab size means the classifier is stored separately.
func readLlama2cConfig(b *binReader) (core.Config, bool) {
	var v [7]int32
	for i, what := range []string{"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"} {
		v[i] = b.i32(what)
	}
	c := core.Config{Dim: int(v[0]), HiddenDim: int(v[1]), NLayers: int(v[2]), NHeads: int(v[3]),
		NKVHeads: int(v[4]), VocabSize: int(v[5]), SeqLen: int(v[6])}
	shared := c.VocabSize > 0
	if c.VocabSize < 0 {
		c.VocabSize = -c.VocabSize
	}
	c.Defaults()
	return c, shared
}

// validateConfig turns a core config error into a file error.
func validateConfig(b *binReader, c *core.Config) bool {
	if b.err != nil {
		return false
	}
	if err := c.Validate(); err != nil {
		b.fail(ErrLimit, "%v", err)
		return false
	}
	return true
}

// readLegacy reads llama2.c's original checkpoint: the config, then fp32
// weights in run.c's order, then two unused RoPE tables. The format has no
// magic, so the file size must match what the header implies exactly.
func readLegacy(b *binReader) (*core.Model, error) {
	c, shared := readLlama2cConfig(b)
	if b.err != nil {
		return nil, b.err
	}
	if err := c.Validate(); err != nil {
		return nil, fileErr(b.name, 0, ErrBadMagic, "no GGUF, ak42 or mote magic, and the header is not a llama2.c checkpoint's either (%v)", err)
	}
	hs := int64(c.HeadSize())
	want := 28 + 4*(c.NumWeights(shared)+int64(c.SeqLen)*hs)
	if b.size >= 0 && b.size != want {
		b.off = 0
		b.fail(ErrBadMagic, "not a llama2.c checkpoint: the header (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, seq %d) implies %d bytes, file has %d",
			c.Dim, c.HiddenDim, c.NLayers, c.NHeads, c.NKVHeads, c.VocabSize, c.SeqLen, want, b.size)
		return nil, b.err
	}
	m := &core.Model{Config: c}
	w := &m.Weights
	d, h, l, kv, v := c.Dim, c.HiddenDim, c.NLayers, c.KVDim(), c.VocabSize
	w.TokenEmbedding = core.NewMatF32(v, d, b.f32s(int64(v*d), "token embedding"))
	w.RmsAtt = b.f32s(int64(l*d), "rms_att")
	w.Wq = layerMatsF32(b, l, d, d, "wq")
	w.Wk = layerMatsF32(b, l, kv, d, "wk")
	w.Wv = layerMatsF32(b, l, kv, d, "wv")
	w.Wo = layerMatsF32(b, l, d, d, "wo")
	w.RmsFFN = b.f32s(int64(l*d), "rms_ffn")
	w.W1 = layerMatsF32(b, l, h, d, "w1")
	w.W2 = layerMatsF32(b, l, d, h, "w2")
	w.W3 = layerMatsF32(b, l, h, d, "w3")
	w.RmsFinal = b.f32s(int64(d), "rms_final")
	b.skip(int64(c.SeqLen)*hs*4, "freq_cis tables")
	if shared {
		w.Wcls = &w.TokenEmbedding
	} else {
		cls := core.NewMatF32(v, d, b.f32s(int64(v*d), "classifier"))
		w.Wcls = &cls
	}
	if b.err != nil {
		return nil, b.err
	}
	return m, nil
}

// layerMatsF32 reads one fp32 matrix per layer, stored back to back.
func layerMatsF32(b *binReader, layers, rows, cols int, name string) []core.Mat {
	all := b.f32s(int64(layers)*int64(rows)*int64(cols), name)
	if all == nil {
		return nil
	}
	ms := make([]core.Mat, layers)
	n := rows * cols
	for i := range ms {
		ms[i] = core.NewMatF32(rows, cols, all[i*n:(i+1)*n:(i+1)*n])
	}
	return ms
}

// readAK42 reads llama2.c's versioned checkpoints (export.py): version 1 is
// fp32 with a 256-byte header; version 2 is runq's Q8_0: fp32 norms, then
// every matrix as int8 values followed by fp32 per-group scales.
func readAK42(b *binReader) (*core.Model, error) {
	b.u32("magic")
	version := b.i32("version")
	if b.err == nil && version != 1 && version != 2 {
		b.fail(ErrUnsupported, "llama2.c checkpoint version %d (mote reads 1 and 2)", version)
	}
	c, _ := readLlama2cConfig(b)
	shared := b.u8("shared_classifier")
	groupSize := 0
	if version == 2 {
		groupSize = int(b.i32("group_size"))
	}
	if b.err == nil && shared > 1 {
		b.fail(ErrCorrupt, "shared_classifier flag %d is not 0 or 1", shared)
	}
	if !validateConfig(b, &c) {
		return nil, b.err
	}
	b.skip(256-b.off, "header padding")
	m := &core.Model{Config: c}
	w := &m.Weights
	d, h, l, kv, v := c.Dim, c.HiddenDim, c.NLayers, c.KVDim(), c.VocabSize
	if version == 1 {
		w.RmsAtt = b.f32s(int64(l*d), "rms_att")
		w.RmsFFN = b.f32s(int64(l*d), "rms_ffn")
		w.RmsFinal = b.f32s(int64(d), "rms_final")
		w.TokenEmbedding = core.NewMatF32(v, d, b.f32s(int64(v*d), "token embedding"))
		w.Wq = layerMatsF32(b, l, d, d, "wq")
		w.Wk = layerMatsF32(b, l, kv, d, "wk")
		w.Wv = layerMatsF32(b, l, kv, d, "wv")
		w.Wo = layerMatsF32(b, l, d, d, "wo")
		w.W1 = layerMatsF32(b, l, h, d, "w1")
		w.W2 = layerMatsF32(b, l, d, h, "w2")
		w.W3 = layerMatsF32(b, l, h, d, "w3")
		if shared == 1 {
			w.Wcls = &w.TokenEmbedding
		} else {
			cls := core.NewMatF32(v, d, b.f32s(int64(v*d), "classifier"))
			w.Wcls = &cls
		}
	} else {
		// runq's groups run over the flattened tensor, so every row length
		// must be a multiple of the group size for them to be row groups.
		if b.err == nil {
			if groupSize <= 0 || groupSize > 1<<16 {
				b.fail(ErrLimit, "group size %d outside 1..65536", groupSize)
			} else if d%groupSize != 0 || h%groupSize != 0 {
				b.fail(ErrUnsupported, "group size %d does not divide dim %d and hidden_dim %d", groupSize, d, h)
			}
		}
		if b.err != nil {
			return nil, b.err
		}
		w.RmsAtt = b.f32s(int64(l*d), "rms_att")
		w.RmsFFN = b.f32s(int64(l*d), "rms_ffn")
		w.RmsFinal = b.f32s(int64(d), "rms_final")
		w.TokenEmbedding = readQ8Mat(b, v, d, groupSize, "token embedding")
		w.Wq = layerMatsQ8(b, l, d, d, groupSize, "wq")
		w.Wk = layerMatsQ8(b, l, kv, d, groupSize, "wk")
		w.Wv = layerMatsQ8(b, l, kv, d, groupSize, "wv")
		w.Wo = layerMatsQ8(b, l, d, d, groupSize, "wo")
		w.W1 = layerMatsQ8(b, l, h, d, groupSize, "w1")
		w.W2 = layerMatsQ8(b, l, d, h, groupSize, "w2")
		w.W3 = layerMatsQ8(b, l, h, d, groupSize, "w3")
		if shared == 1 {
			w.Wcls = &w.TokenEmbedding
		} else {
			cls := readQ8Mat(b, v, d, groupSize, "classifier")
			w.Wcls = &cls
		}
		m.ActGroup = groupSize // runq quantizes activations in the same groups
	}
	if b.err != nil {
		return nil, b.err
	}
	if rem := b.remaining(); rem > 0 {
		b.fail(ErrCorrupt, "%d bytes after the last tensor", rem)
		return nil, b.err
	}
	return m, nil
}

// readQ8Mat reads int8 values then fp32 scales (one per group of a row).
func readQ8Mat(b *binReader, rows, cols, gs int, name string) core.Mat {
	q := b.i8s(int64(rows)*int64(cols), name)
	s := b.f32s(int64(rows)*int64((cols+gs-1)/gs), name+" scales")
	return core.NewMatQ8(rows, cols, gs, q, s)
}

func layerMatsQ8(b *binReader, layers, rows, cols, gs int, name string) []core.Mat {
	ms := make([]core.Mat, layers)
	for i := range ms {
		ms[i] = readQ8Mat(b, rows, cols, gs, fmt.Sprintf("%s[%d]", name, i))
	}
	return ms
}

// Hard limits for llama2.c tokenizer files.
const (
	maxTokenBytes = 1 << 12 // longest piece accepted
)

// ReadTokenizer reads a llama2.c tokenizer .bin for a vocabulary of n tokens:
// int32 max_token_length, then per token float32 score, int32 length, bytes.
// BOS is 1 and EOS is 2, as llama2.c assumes.
func ReadTokenizer(name string, r io.Reader, size int64, n int) (*core.Tokenizer, error) {
	b := newBinReader(name, r, size)
	return readTokenizerBin(b, n)
}

func readTokenizerBin(b *binReader, n int) (*core.Tokenizer, error) {
	if n <= 0 || n > core.MaxVocab {
		return nil, fileErr(b.name, 0, ErrLimit, "vocabulary of %d tokens outside 1..%d", n, core.MaxVocab)
	}
	maxLen := b.i32("max_token_length")
	if b.err == nil && (maxLen < 0 || maxLen > maxTokenBytes) {
		b.fail(ErrLimit, "max_token_length %d outside 0..%d", maxLen, maxTokenBytes)
	}
	if rem := b.remaining(); b.err == nil && rem >= 0 && rem < int64(n)*8 {
		b.fail(ErrTruncated, "%d tokens need at least %d bytes, %d left", n, int64(n)*8, rem)
	}
	if b.err != nil {
		return nil, b.err
	}
	vocab := make([]string, n)
	scores := make([]float32, n)
	var buf []byte
	for i := range vocab {
		scores[i] = b.f32("score")
		l := b.i32("token length")
		if b.err == nil && (l < 0 || l > maxTokenBytes) {
			b.fail(ErrLimit, "token %d has length %d outside 0..%d", i, l, maxTokenBytes)
		}
		if b.err != nil {
			return nil, b.err
		}
		buf = append(buf[:0], make([]byte, l)...)
		b.full(buf, fmt.Sprintf("token %d", i))
		vocab[i] = string(buf)
	}
	if b.err != nil {
		return nil, b.err
	}
	if n < 3 {
		return nil, fileErr(b.name, b.off, ErrUnsupported, "vocabulary of %d tokens has no BOS (1) and EOS (2)", n)
	}
	t, err := core.NewTokenizer(vocab, scores, 1, 2)
	if err != nil {
		return nil, fileErr(b.name, b.off, ErrCorrupt, "%v", err)
	}
	return t, nil
}
