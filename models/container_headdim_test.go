package models

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"mote/core"
)

// Models whose heads are not dim/n_heads wide (head-pruned: fewer heads of
// the same size; or heads wider than dim/n_heads) store head_dim after the
// config flags (FORMAT.md, Config), and read back exactly, in every mode.
func TestHeadDimRoundTrip(t *testing.T) {
	for name, o := range map[string]ctSynthOpts{
		"pruned f32":                      {typ: core.F32, tok: ctTokInt, seed: 11, heads: [3]int{1, 1, 4}},                       // dim 8: one head of 4
		"wide q8":                         {typ: core.Q8, gs: 4, shared: true, tok: ctTokBytes, seed: 12, heads: [3]int{2, 1, 6}}, // q 12 > dim 8
		"dim not a multiple of heads, q4": {typ: core.Q4, gs: 4, tok: ctTokFloat, seed: 13, heads: [3]int{3, 1, 2}},
	} {
		m := ctSynthModel(t, o)
		if m.Config.HeadDim == 0 || m.Weights.Wq[0].Rows != m.Config.QDim() {
			t.Fatalf("%s: synthetic model %+v", name, m.Config)
		}
		for _, mode := range ctAllModes {
			data := ctEncode(t, m, WriteOptions{Compression: mode})
			got, _, err := ReadBytes("h.mote", data)
			if err != nil {
				t.Fatalf("%s, mode %d: %v", name, mode, err)
			}
			if d := ctDiffModels(m, got); d != "" {
				t.Errorf("%s, mode %d: %s", name, mode, d)
			}
			if mode != CompressNone {
				continue
			}
			secs := ctSplitSections(t, data)
			body := data[secs[0].bodyAt : secs[0].bodyAt+secs[0].length]
			if secs[0].length != configSize+configHeadDimSize || body[40]&cfgHeadDim == 0 ||
				binary.LittleEndian.Uint32(body[41:]) != uint32(m.Config.HeadDim) {
				t.Errorf("%s: config section % x", name, body)
			}
		}
		// and the model read back computes what the original computes
		got, _, err := ReadBytes("h.mote", ctEncode(t, m, WriteOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		sa, sb := m.NewState(0), got.NewState(0)
		for pos := 0; pos < m.Config.SeqLen; pos++ {
			a, b := m.Forward(sa, pos%m.Config.VocabSize, pos), got.Forward(sb, pos%m.Config.VocabSize, pos)
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Fatalf("%s: pos %d logit %d: %g vs %g", name, pos, i, a[i], b[i])
				}
			}
		}
	}
}

// An explicit head_dim equal to dim/n_heads is written as an ordinary
// config: 41 bytes, byte for byte what a model without it gives.
func TestHeadDimImpliedIsNotStored(t *testing.T) {
	m := ctSynthModel(t, ctSynthOpts{typ: core.F32, tok: ctTokInt, seed: 14})
	plain := ctEncode(t, m, WriteOptions{})
	m.Config.HeadDim = m.Config.Dim / m.Config.NHeads
	if explicit := ctEncode(t, m, WriteOptions{}); !bytes.Equal(plain, explicit) {
		t.Error("head_dim = dim/n_heads changed the file")
	}
	if secs := ctSplitSections(t, plain); secs[0].length != configSize {
		t.Errorf("config section of %d bytes", secs[0].length)
	}
}

func TestHeadDimRejects(t *testing.T) {
	m := ctSynthModel(t, ctSynthOpts{typ: core.F32, tok: ctTokInt, seed: 15, heads: [3]int{1, 1, 4}})
	good := ctEncode(t, m, WriteOptions{})
	secs := ctSplitSections(t, good)
	cfg := good[secs[0].bodyAt : secs[0].bodyAt+secs[0].length]
	rest := good[secs[1].at:]
	rebuild := func(body []byte) []byte {
		payload := append(ctSection(secConfig, int64(len(body)), body), rest...)
		return ctFrame(CompressNone, good[7], payload)
	}
	if _, _, err := ReadBytes("good.mote", rebuild(cfg)); err != nil {
		t.Fatalf("the rebuilt good file: %v", err)
	}
	with := func(edit func(b []byte) []byte) []byte { return rebuild(edit(append([]byte(nil), cfg...))) }
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"flag cleared, head_dim still there", with(func(b []byte) []byte { b[40] &^= cfgHeadDim; return b }), ErrCorrupt},
		{"flag set, head_dim missing", with(func(b []byte) []byte { return b[:configSize] }), ErrCorrupt},
		{"head_dim 0", with(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[41:], 0); return b }), ErrCorrupt},
		{"head_dim odd", with(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[41:], 5); return b }), ErrLimit},
		{"head_dim huge", with(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[41:], 1<<31); return b }), ErrLimit},
		{"head_dim max u32", with(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[41:], math.MaxUint32); return b }), ErrLimit},
		// the tensors were written for head_dim 4: another valid size must not fit them
		{"head_dim disagrees with the tensors", with(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[41:], 6); return b }), ErrCorrupt},
		{"config too long", with(func(b []byte) []byte { return append(b, 0) }), ErrCorrupt},
	} {
		_, _, err := ReadBytes(tc.name, tc.data)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// llama.attention.key_length gives a GGUF model its head size.
func TestGGUFHeadDim(t *testing.T) {
	m := ctSynthModel(t, ctSynthOpts{typ: core.F32, tok: ctTokBytes, shared: true, seed: 16, heads: [3]int{2, 1, 6}})
	w := ggufFromModel(m, ggufAllF32)
	w.set("llama.attention.key_length", uint32(6))
	w.set("llama.attention.value_length", uint32(6))
	data, _ := w.bytes()
	got := ggufRead(t, "h.gguf", data)
	if got.Config.HeadDim != 6 || got.Config.QDim() != 12 {
		t.Fatalf("config %+v", got.Config)
	}
	if err := ggufSameWeights(m, got); err != nil {
		t.Fatal(err)
	}
	// without the key the shapes contradict dim/n_heads
	w.del("llama.attention.key_length")
	w.del("llama.attention.value_length")
	w.set("llama.rope.dimension_count", uint32(4))
	data, _ = w.bytes()
	if _, _, err := ReadBytes("h.gguf", data); err == nil {
		t.Error("a GGUF with 6-wide heads but no key_length was read")
	}
	// value_length must agree
	w.set("llama.attention.key_length", uint32(6))
	w.set("llama.attention.value_length", uint32(4))
	w.set("llama.rope.dimension_count", uint32(6))
	data, _ = w.bytes()
	if _, _, err := ReadBytes("h.gguf", data); !errors.Is(err, ErrUnsupported) {
		t.Errorf("value_length 4 with key_length 6: %v, want unsupported", err)
	}
}
