package core

import (
	"errors"
	"fmt"
)

// Config is a llama model's shape, with llama2.c's names.
type Config struct {
	Dim       int // transformer width
	HiddenDim int // FFN width
	NLayers   int
	NHeads    int // query heads
	NKVHeads  int // key/value heads (grouped-query attention when < NHeads)
	VocabSize int
	SeqLen    int // longest context the model was trained for

	// HeadDim is the width of one attention head; 0 means Dim/NHeads (every
	// llama2.c checkpoint and most GGUF files). A head-pruned model keeps its
	// residual width Dim with fewer heads, so NHeads*HeadDim < Dim.
	HeadDim int

	NormEps   float32 // RMSNorm epsilon; llama2.c hard-codes 1e-5
	RopeTheta float32 // RoPE base; llama2.c hard-codes 10000
}

// Hard limits on a model's shape. They are far above any model mote can run
// in a browser and low enough that no product of them overflows an int on a
// 32-bit wasm target before the byte budget check rejects it.
const (
	MaxDim     = 1 << 15
	MaxLayers  = 1 << 10
	MaxHeads   = 1 << 10
	MaxVocab   = 1 << 20
	MaxSeqLen  = 1 << 20
	MaxWeights = 1 << 33 // total parameters accepted
)

// ErrBadConfig says a model's shape is impossible or beyond mote's limits.
var ErrBadConfig = errors.New("bad model config")

// DefaultConfig fills the fields llama2.c does not store with its constants.
func (c *Config) Defaults() {
	if c.NormEps == 0 {
		c.NormEps = 1e-5
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
}

// HeadSize is the width of one attention head.
func (c *Config) HeadSize() int {
	if c.HeadDim != 0 {
		return c.HeadDim
	}
	return c.Dim / c.NHeads
}

// QDim is the width of the query vector of one position (all heads): the
// rows of wq and the columns of wo.
func (c *Config) QDim() int { return c.NHeads * c.HeadSize() }

// KVDim is the width of the key and value vectors of one position.
func (c *Config) KVDim() int { return c.NKVHeads * c.HeadSize() }

// NumWeights counts the parameters of the matrices and norms (the classifier
// once when it is shared with the token embedding).
func (c *Config) NumWeights(sharedClassifier bool) int64 {
	d, h, l, v := int64(c.Dim), int64(c.HiddenDim), int64(c.NLayers), int64(c.VocabSize)
	kv, q := int64(c.KVDim()), int64(c.QDim())
	n := v*d + l*(2*d+2*d*q+2*d*kv+3*d*h) + d
	if !sharedClassifier {
		n += v * d
	}
	return n
}

// Validate checks that the shape is possible and inside the limits.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, a...)...)
	}
	switch {
	case c.Dim <= 0 || c.Dim > MaxDim:
		return bad("dim %d outside 1..%d", c.Dim, MaxDim)
	case c.HiddenDim <= 0 || c.HiddenDim > 8*MaxDim:
		return bad("hidden_dim %d outside 1..%d", c.HiddenDim, 8*MaxDim)
	case c.NLayers <= 0 || c.NLayers > MaxLayers:
		return bad("n_layers %d outside 1..%d", c.NLayers, MaxLayers)
	case c.NHeads <= 0 || c.NHeads > MaxHeads:
		return bad("n_heads %d outside 1..%d", c.NHeads, MaxHeads)
	case c.NKVHeads <= 0 || c.NKVHeads > c.NHeads:
		return bad("n_kv_heads %d outside 1..n_heads (%d)", c.NKVHeads, c.NHeads)
	case c.NHeads%c.NKVHeads != 0:
		return bad("n_heads %d is not a multiple of n_kv_heads %d", c.NHeads, c.NKVHeads)
	case c.HeadDim < 0 || c.HeadDim > MaxDim:
		return bad("head_dim %d outside 0..%d", c.HeadDim, MaxDim)
	case c.HeadDim == 0 && c.Dim%c.NHeads != 0:
		return bad("dim %d is not a multiple of n_heads %d", c.Dim, c.NHeads)
	case c.HeadSize() <= 0:
		return bad("head size %d", c.HeadSize())
	case c.QDim() > 4*MaxDim:
		return bad("n_heads x head_dim = %d, more than %d", c.QDim(), 4*MaxDim)
	case c.HeadSize()%2 != 0:
		return bad("head size %d is odd (RoPE rotates pairs)", c.HeadSize())
	case c.VocabSize <= 0 || c.VocabSize > MaxVocab:
		return bad("vocab_size %d outside 1..%d", c.VocabSize, MaxVocab)
	case c.SeqLen <= 0 || c.SeqLen > MaxSeqLen:
		return bad("seq_len %d outside 1..%d", c.SeqLen, MaxSeqLen)
	case !(c.NormEps > 0 && c.NormEps < 1):
		return bad("norm epsilon %g outside (0, 1)", c.NormEps)
	case !(c.RopeTheta > 1 && c.RopeTheta < 1e9):
		return bad("rope theta %g outside (1, 1e9)", c.RopeTheta)
	}
	if n := c.NumWeights(false); n > MaxWeights {
		return bad("%d parameters, more than the limit %d", n, int64(MaxWeights))
	}
	return nil
}
