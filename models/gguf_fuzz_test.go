package models

import (
	"bytes"
	"math/rand/v2"
	"mote/core"
	"strings"
	"testing"
)

// FuzzReadGGUF feeds the GGUF reader arbitrary bytes of known size: it must
// return a model that validates or an *Error wrapping a sentinel, and never
// panic. Seeds: a tiny file of every tensor type mote reads (with skipped
// metadata of every type and skipped tensors), the head of stories260K.gguf,
// and truncated and bit-flipped copies.
func FuzzReadGGUF(f *testing.F) {
	// Seeds are kept small: the fuzzer minimizes every new input it finds,
	// which takes up to a minute for a 60 KB one and stalls the search.
	c := core.Config{Dim: 32, HiddenDim: 32, NLayers: 1, NHeads: 2, NKVHeads: 1, VocabSize: 12, SeqLen: 8,
		NormEps: 1e-5, RopeTheta: 10000}
	w := ggufFromModel(ggufTiny(2, c), func(name string, rows, cols int) uint32 {
		switch {
		case rows == 1 && strings.Contains(name, "ffn"):
			return ggmlF16
		case rows == 1:
			return ggmlF32
		case name == "token_embd.weight":
			return ggmlF16
		}
		return ggmlQ8_0
	})
	ggufAddExtras(w)
	tiny, L := w.bytes()
	real := ggufReadFile(f)
	f.Add(tiny)
	w.tensors = w.tensors[:3] // a header whose tensors are missing
	small, _ := w.bytes()
	f.Add(small)
	for _, n := range []int{8, 24, L.val["tokenizer.ggml.tokens"] + 30, L.info["token_embd.weight"] + 10, L.dataStart, len(tiny) / 2} {
		f.Add(tiny[:n])
	}
	// stories260K.gguf's metadata and tensor infos, not its 1.2 MB of floats
	f.Add(real[:14200])
	f.Add(real[:5000])
	rng := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		d := bytes.Clone(tiny)
		p := rng.IntN(L.dataStart)
		d[p] ^= 1 << rng.IntN(8)
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := newBinReader("fuzz.gguf", bytes.NewReader(data), int64(len(data)))
		m, err := readGGUF(b, &Info{})
		if err != nil {
			ggufCheckErr(t, err, "fuzz")
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("read a model that does not validate: %v", err)
		}
	})
}
