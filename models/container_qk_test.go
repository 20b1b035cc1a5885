package models

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"mote/core"
)

// qkRandom builds a random packed matrix: every index value used, scales
// stored as st (log8 with a random grid).
func qkRandom(r *rand.Rand, rows, cols, bits, gs int, uniform bool, st ScaleType) *PackedMat {
	p := &PackedMat{Rows: rows, Cols: cols, Bits: bits, GroupSize: gs, Uniform: uniform, Scale: st,
		Idx: make([]uint8, rows*cols)}
	if uniform {
		p.Codebook = UniformCodebook(bits)
	} else {
		p.Codebook = make([]int8, 1<<bits)
		for i := range p.Codebook {
			p.Codebook[i] = int8(r.IntN(256) - 128)
		}
	}
	for i := range p.Idx {
		p.Idx[i] = uint8(r.IntN(1 << bits))
	}
	n := rows * p.GroupsPerRow()
	p.S = make([]float32, n)
	if st != ScaleF32 {
		p.Codes = make([]uint16, n)
	}
	var table [256]float32
	if st == ScaleLog8 {
		p.LogBase, p.LogSteps = float32(math.Ldexp(1+r.Float64(), -12)), 2+r.IntN(64) // 256 codes span at most 128 octaves
		var err error
		if table, err = Log8Table(p.LogBase, p.LogSteps); err != nil {
			panic(err)
		}
	}
	for i := range p.S {
		switch st {
		case ScaleF32:
			p.S[i] = r.Float32() / 64
		case ScaleF16:
			p.Codes[i] = HalfBits(r.Float32() / 64)
			p.S[i] = HalfFloat(p.Codes[i])
		case ScaleLog8:
			p.Codes[i] = uint16(r.IntN(256))
			p.S[i] = table[p.Codes[i]]
		}
	}
	return p
}

// qkModel replaces every matrix of a synthetic model by a random packed one
// (the spec cycling over the cases) and returns the packed forms by name.
func qkModel(t testing.TB, shared bool, seed uint64, bits int, st ScaleType) (*core.Model, map[string]*PackedMat) {
	m := ctSynthModel(t, ctSynthOpts{typ: core.F32, shared: shared, tok: ctTokInt, seed: seed})
	r := rand.New(rand.NewPCG(seed, 99))
	packed := map[string]*PackedMat{}
	k := 0
	for _, s := range modelSlots(&m.Config, shared) {
		mat, _ := slotMat(m, s)
		if mat == nil {
			continue
		}
		// awkward group sizes: 1, 3, 5, a whole row, more than a row
		gs := []int{3, 5, 1, s.cols, s.cols + 7}[k%5]
		p := qkRandom(r, s.rows, s.cols, bits, gs, k%2 == 0, st)
		k++
		*mat = p.Core()
		packed[tensorName(s.code, s.layer)] = p
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m, packed
}

// Every bit width, codebook coding and scale type survives a write and a
// read in every compression mode, bit for bit, and takes the bytes
// FORMAT.md says.
func TestQKRoundTrip(t *testing.T) {
	for bits := minPackedBits; bits <= maxPackedBits; bits++ {
		for _, st := range []ScaleType{ScaleF32, ScaleF16, ScaleLog8} {
			for _, shared := range []bool{true, false} {
				m, packed := qkModel(t, shared, uint64(bits*10+int(st)), bits, st)
				for _, mode := range ctAllModes {
					data := ctEncode(t, m, WriteOptions{Compression: mode, Packed: packed})
					got, _, err := ReadBytes("qk", data)
					if err != nil {
						t.Fatalf("%d bits, %v scales, %v: %v", bits, st, mode, err)
					}
					if d := ctDiffModels(m, got); d != "" {
						t.Fatalf("%d bits, %v scales, %v: %s", bits, st, mode, d)
					}
					if mode != CompressNone {
						continue
					}
					ci, err := ReadContainerInfo("qk", bytes.NewReader(data), int64(len(data)))
					if err != nil {
						t.Fatal(err)
					}
					var stored int64
					for _, ti := range ci.Tensors {
						p := packed[ti.Name]
						if p == nil {
							continue
						}
						if ti.Type != TypeQK || ti.Bits != bits || ti.Scale != st || ti.Codebook == p.Uniform || ti.GroupSize != p.GroupSize {
							t.Errorf("%s: directory says %+v", ti.Name, ti)
						}
						// FORMAT.md: codebook (if stored) + ceil(rck/8) + scales
						want := int64(ti.Rows*ti.Cols*bits+7) / 8
						if !p.Uniform {
							want += 1 << bits
						}
						g := int64(ti.Rows * p.GroupsPerRow())
						want += map[ScaleType]int64{ScaleF32: 4 * g, ScaleF16: 2 * g, ScaleLog8: 5 + g}[st]
						if ti.Stored != want || p.RawBytes() != want {
							t.Errorf("%s: %d stored bytes, RawBytes %d, FORMAT.md %d", ti.Name, ti.Stored, p.RawBytes(), want)
						}
						stored += ti.Stored
					}
					if stored == 0 {
						t.Fatal("no qk tensor written")
					}
				}
			}
		}
	}
}

// A file with qk tensors runs like the model it was written from.
func TestQKModelRuns(t *testing.T) {
	m, packed := qkModel(t, true, 5, 3, ScaleLog8)
	got, _, err := ReadBytes("qk", ctEncode(t, m, WriteOptions{Compression: CompressZstd, Packed: packed}))
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := m.NewState(0), got.NewState(0)
	for pos, tok := range []int{1, 5, 9, 3} {
		a, b := m.Forward(s1, tok, pos), got.Forward(s2, tok, pos)
		if !slices.Equal(a, b) {
			t.Fatalf("pos %d: logits differ", pos)
		}
	}
}

// The bit stream is laid out as FORMAT.md says: index n at bits n*k.., low
// bit first, across row ends, zero padding.
func TestQKBitStream(t *testing.T) {
	p := &PackedMat{Rows: 2, Cols: 3, Bits: 3, GroupSize: 3, Uniform: true, Codebook: UniformCodebook(3),
		Idx: []uint8{1, 2, 3, 4, 5, 7}, S: []float32{1, 2}}
	var got []byte
	if err := emitPacked(p, func(b []byte) error { got = append(got, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	// bits: 001 010 011 100 101 111 (index 0 first, each low bit first)
	var want uint32
	for n, x := range p.Idx {
		want |= uint32(x) << (3 * n)
	}
	wantBytes := []byte{byte(want), byte(want >> 8), byte(want >> 16)} // 18 bits -> 3 bytes
	wantBytes = append(wantBytes, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40)     // f32 scales 1, 2
	if !bytes.Equal(got, wantBytes) {
		t.Errorf("stream % x, want % x", got, wantBytes)
	}
	if got[2]>>2 != 0 {
		t.Errorf("padding bits not zero: %08b", got[2])
	}
}

func TestLog8Table(t *testing.T) {
	for _, steps := range []int{2, 7, 16, 32, 255} {
		base := float32(0.0123)
		tab, err := Log8Table(base, steps)
		if err != nil {
			t.Fatal(err)
		}
		if tab[0] != base {
			t.Errorf("steps %d: code 0 is %g, not the base", steps, tab[0])
		}
		for c := 1; c < 256; c++ {
			if !(tab[c] > tab[c-1]) {
				t.Fatalf("steps %d: not increasing at %d", steps, c)
			}
			want := float64(base) * math.Exp2(float64(c)/float64(steps))
			if rel := math.Abs(float64(tab[c])/want - 1); rel > 2e-7 { // two float32 roundings at most
				t.Errorf("steps %d code %d: %g, want %g (rel %g)", steps, c, tab[c], want, rel)
			}
			if c%steps == 0 && tab[c] != float32(math.Ldexp(float64(base), c/steps)) {
				t.Errorf("steps %d: code %d is not an exact octave of the base", steps, c)
			}
		}
	}
	for _, bad := range []struct {
		base  float32
		steps int
	}{{0, 8}, {-1, 8}, {float32(math.Inf(1)), 8}, {float32(math.NaN()), 8}, {1e-40, 8}, {1, 0}, {1, 256}, {1e38, 1}} {
		if _, err := Log8Table(bad.base, bad.steps); err == nil {
			t.Errorf("base %g steps %d accepted", bad.base, bad.steps)
		}
	}
}

// The writer refuses packed forms that are inconsistent or do not decode
// to the model's matrix.
func TestQKWriterChecks(t *testing.T) {
	m, packed := qkModel(t, true, 3, 4, ScaleF16)
	name := "blk.0.attn_q"
	cases := map[string]func(p *PackedMat){
		"index too big":      func(p *PackedMat) { p.Idx[3] = 16 },
		"scale off its code": func(p *PackedMat) { p.S[0] *= 1.5 },
		"not uniform":        func(p *PackedMat) { p.Uniform, p.Codebook[0] = true, 5 },
		"short codebook":     func(p *PackedMat) { p.Codebook = p.Codebook[:8] },
		"other values":       func(p *PackedMat) { p.Idx[0] ^= 1 },
		"9 bits":             func(p *PackedMat) { p.Bits = 9 },
	}
	for what, change := range cases {
		bad := map[string]*PackedMat{}
		for k, v := range packed {
			bad[k] = v
		}
		p := *packed[name]
		p.Idx, p.S, p.Codebook = slices.Clone(p.Idx), slices.Clone(p.S), slices.Clone(p.Codebook)
		change(&p)
		bad[name] = &p
		if err := WriteContainer(&bytes.Buffer{}, m, WriteOptions{Packed: bad}); err == nil {
			t.Errorf("%s: written", what)
		}
	}
	extra := map[string]*PackedMat{"blk.9.attn_q": packed[name]}
	if err := WriteContainer(&bytes.Buffer{}, m, WriteOptions{Packed: extra}); err == nil {
		t.Error("a packed tensor the model does not have was accepted")
	}
}

// Damaged qk and log8 fields are rejected with the right sentinel.
func TestQKRejects(t *testing.T) {
	m, packed := qkModel(t, true, 4, 3, ScaleLog8)
	// tensor 1 is blk.0.attn_norm; 2 is blk.0.attn_q (qk)
	dirQK := func(f func(p *PackedMat)) func(cw *containerWriter) {
		return func(cw *containerWriter) {
			dirSays(cw, 2, func(t *outTensor) {
				p := *t.packed
				f(&p)
				t.packed = &p
			})
		}
	}
	logHeader := func(base float32, steps byte) func(cw *containerWriter) {
		return func(cw *containerWriter) {
			t := &cw.tensors[2]
			p := *t.packed
			p.LogBase, p.LogSteps = base, int(steps)
			t.packed = &p
			for i := range cw.tensors {
				cw.tensors[i].crc = 0
			}
			cw.prepare()
		}
	}
	cases := []struct {
		name   string
		change func(cw *containerWriter)
		want   error
	}{
		{"9 bits", dirQK(func(p *PackedMat) { p.Bits = 9 }), ErrUnsupported},
		{"1 bit", dirQK(func(p *PackedMat) { p.Bits = 1 }), ErrUnsupported},
		{"log8 base 0", logHeader(0, 8), ErrCorrupt},
		{"log8 steps 0", logHeader(1, 0), ErrCorrupt},
		{"log8 overflow", logHeader(1e38, 1), ErrCorrupt},
	}
	for _, c := range cases {
		data := ctTamper(t, m, WriteOptions{Packed: packed}, c.change)
		_, _, err := ReadBytes("bad", data)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		ctCheckFileErr(t, err, c.name)
	}
	// codebook coding 2: patch the byte after the bits field of tensor 2
	good := ctEncode(t, m, WriteOptions{Packed: packed})
	secs := ctSplitSections(t, good)
	dir := secs[2]
	body := slices.Clone(good[dir.bodyAt : dir.bodyAt+dir.length])
	// entry 0 token_embd: code, type, gs, scale, bits, cb ... find the first qk entry's bits byte
	i := bytes.Index(body, []byte{byte(TypeQK)})
	if i < 0 {
		t.Fatal("no qk entry")
	}
	n := binary.PutUvarint(make([]byte, 10), uint64(packed["token_embd"].GroupSize))
	cbAt := i + 1 + n + 1 + 1
	body[cbAt] = 2
	bad := ctFrame(CompressNone, 1, slices.Concat(good[preambleSize:dir.at], ctSection(secDirectory, int64(len(body)), body), good[dir.bodyAt+dir.length:]))
	if _, _, err := ReadBytes("bad", bad); !errors.Is(err, ErrUnsupported) {
		t.Errorf("codebook coding 2: %v", err)
	}
}

// Padding bits after the last index must be zero.
func TestQKPaddingBits(t *testing.T) {
	e := &dirEntry{TensorInfo: TensorInfo{Name: "x", Type: TypeQK, Bits: 3, GroupSize: 3, Scale: ScaleF32, Rows: 1, Cols: 3}}
	for _, c := range []struct {
		second byte
		ok     bool
	}{{0x01, true}, {0x03, false}, {0x80, false}} {
		// 9 bits of indices: 2 bytes, then one f32 scale
		data := append([]byte{0xff, c.second}, 0, 0, 0x80, 0x3f)
		src := &cReader{r: bytes.NewReader(data), name: "x", limit: int64(len(data)), secEnd: -1, over: ErrTruncated}
		var m core.Mat
		readPacked(src, e, &m)
		if (src.err == nil) != c.ok {
			t.Errorf("second byte %08b: err %v", c.second, src.err)
		}
		if c.ok && (m.Type != core.Q4 || m.S[0] != 1) {
			t.Errorf("decoded %+v", m)
		}
		if !c.ok && !errors.Is(src.err, ErrCorrupt) {
			t.Errorf("second byte %08b: %v, want ErrCorrupt", c.second, src.err)
		}
	}
}

// Fuzz seeds with qk tensors, for FuzzReadContainer's checks.
func FuzzReadContainerQK(f *testing.F) {
	for bits := 2; bits <= 8; bits += 3 {
		m, packed := qkModel(f, bits%2 == 0, uint64(bits), bits, ScaleType(bits%3))
		for _, mode := range ctAllModes {
			data := ctEncode(f, m, WriteOptions{Compression: mode, Packed: packed})
			f.Add(data)
			f.Add(data[:len(data)*2/3])
			flipped := slices.Clone(data)
			flipped[len(data)/2] ^= 0x10
			f.Add(flipped)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzContainer(t, data)
		if fixed := fixContainerCRCs(data); fixed != nil {
			fuzzContainer(t, fixed)
		}
	})
}
