package models

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"

	"github.com/klauspost/compress/zstd"

	"mote/core"
)

// WriteOptions choose how WriteContainer stores a model. The zero value
// writes an uncompressed container that keeps every tensor exactly.
type WriteOptions struct {
	Compression Compression
	Level       int  // zstd level 1..22; 0 means DefaultZstdLevel
	F16Scales   bool // store the scales of Q8 and Q4 tensors as IEEE halves (lossy)
	F16         bool // store fp32 matrices as IEEE halves (lossy; norms stay fp32)
	NoTensorCRC bool // leave out the per-tensor CRCs (4 bytes a tensor)
	NoShuffle   bool // compressed modes: store fp32 matrices as f32, not byte-shuffled f32s

	// Packed gives, by tensor name (token_embd, output, blk.N.attn_q, ...),
	// the compact stored form of quantized matrices (type qk, FORMAT.md).
	// Each must decode to exactly the model's matrix of that name.
	Packed map[string]*PackedMat

	literalNames bool // tests: spell tensor names out instead of using codes
}

// DefaultZstdLevel is the zstd level used when WriteOptions.Level is 0 and
// the tensors are larger than smallModelBytes; smaller models get
// SmallModelZstdLevel. klauspost/compress has four encoders (levels 1-2, 3-5,
// 6-9, 10-22). Measured: on a 15M-shape fp32 model the best encoder was
// 0.01 % smaller than level 7 and 10x slower (27 s vs 2.4 s); on stories260K
// with byte-shuffled fp32 (f32s) it is 3.3 % smaller (923,822 -> 893,053
// bytes) and takes well under a second, so small models get it.
const (
	DefaultZstdLevel    = 7
	SmallModelZstdLevel = 19
	smallModelBytes     = 16 << 20
)

// WriteContainer writes m as a mote container (FORMAT.md). F32, Q8 and Q4
// tensors are stored exactly as they are in memory unless the options ask
// for halves. The tokenizer is written when m has one.
//
// Memory: without compression the tensors are written straight from the
// model (a first pass computes their checksums). With compression the
// compressed payload is held in memory until its length is known, since the
// preamble that precedes it records that length: at most the size of the
// compressed model, never a second copy of the uncompressed one.
func WriteContainer(w io.Writer, m *core.Model, opts WriteOptions) error {
	cw, err := newContainerWriter(m, opts)
	if err != nil {
		return err
	}
	return cw.write(w)
}

// outTensor is one tensor to write.
type outTensor struct {
	slot
	typ    TensorType
	gs     int
	scale  ScaleType
	mat    *core.Mat  // nil for norms
	vec    []float32  // norms
	packed *PackedMat // type qk
	raw    int64
	frame  []byte // per-tensor mode: the zstd frame, when smaller than raw
	crc    uint32 // of the stored bytes
	name   string // when not empty, the tensor's name (encoders and heads, container_bert.go)
}

// displayName is the tensor's name as FORMAT.md spells it.
func (t *outTensor) displayName() string {
	if t.name != "" {
		return t.name
	}
	return tensorName(t.code, t.layer)
}

func (t *outTensor) stored() int64 {
	if t.frame != nil {
		return int64(len(t.frame))
	}
	return t.raw
}

type containerWriter struct {
	m       *core.Model
	o       WriteOptions
	tensors []outTensor
	config  []byte
	tok     []byte // nil without tokenizer
	dir     []byte
	dataLen int64
	dataCRC uint32
	halves  []byte // scratch for converting to halves
	shuf    []byte // scratch for byte-shuffling f32s blocks
	flags   byte   // preamble flags beyond the tensor CRC bit (encoders and heads, container_bert.go)
}

func newContainerWriter(m *core.Model, o WriteOptions) (*containerWriter, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("models: cannot write an invalid model: %w", err)
	}
	if o.Compression > CompressTensor {
		return nil, fmt.Errorf("models: compression mode %d", o.Compression)
	}
	if o.Level < 0 || o.Level > 22 {
		return nil, fmt.Errorf("models: zstd level %d outside 1..22", o.Level)
	}
	autoLevel := o.Level == 0
	if m.ActGroup > maxGroupSize {
		return nil, fmt.Errorf("models: activation group %d above the limit %d", m.ActGroup, maxGroupSize)
	}
	cw := &containerWriter{m: m, o: o, halves: make([]byte, 32<<10)}
	cw.config = encodeConfig(m)
	if m.Tokenizer != nil {
		var err error
		if cw.tok, err = encodeTokenizer(m.Tokenizer); err != nil {
			return nil, err
		}
	}
	shared := m.SharedClassifier()
	used := 0
	for _, s := range modelSlots(&m.Config, shared) {
		t := outTensor{slot: s, typ: TypeF32}
		t.mat, t.vec = slotMat(m, s)
		if p := o.Packed[tensorName(s.code, s.layer)]; p != nil && t.mat != nil {
			if err := checkPacked(p, t.mat); err != nil {
				return nil, fmt.Errorf("models: %s: %w", tensorName(s.code, s.layer), err)
			}
			t.typ, t.gs, t.scale, t.packed = TypeQK, p.GroupSize, p.Scale, p
			t.raw = p.RawBytes()
			cw.tensors = append(cw.tensors, t)
			used++
			continue
		}
		if t.mat != nil {
			switch t.mat.Type {
			case core.F32:
				switch {
				case o.F16:
					t.typ = TypeF16
				case o.Compression != CompressNone && !o.NoShuffle:
					// byte planes compress ~10 % better under zstd
					t.typ = TypeF32S
				}
			case core.Q8, core.Q4:
				t.typ, t.gs = TypeQ8, t.mat.GroupSize
				if t.mat.Type == core.Q4 {
					t.typ = TypeQ4
				}
				if o.F16Scales {
					t.scale = ScaleF16
				}
				if t.gs > maxGroupSize {
					return nil, fmt.Errorf("models: %s has group size %d, above the limit %d", tensorName(s.code, s.layer), t.gs, maxGroupSize)
				}
			default:
				return nil, fmt.Errorf("models: %s has matrix type %v, which the container cannot store", tensorName(s.code, s.layer), t.mat.Type)
			}
		}
		t.raw = rawSize(t.typ, s.rows, s.cols, t.gs, t.scale, 0, false)
		cw.tensors = append(cw.tensors, t)
	}
	if used != len(o.Packed) {
		return nil, fmt.Errorf("models: %d packed tensors given, %d of them name a matrix of this model", len(o.Packed), used)
	}
	if autoLevel {
		var raw int64
		for i := range cw.tensors {
			raw += cw.tensors[i].raw
		}
		cw.o.Level = DefaultZstdLevel
		if raw <= smallModelBytes {
			cw.o.Level = SmallModelZstdLevel
		}
	}
	return cw, cw.prepare()
}

// prepare computes the per-tensor CRCs (and frames), the directory and the
// data section's length and CRC.
func (cw *containerWriter) prepare() error {
	var enc *zstd.Encoder
	if cw.o.Compression == CompressTensor {
		var err error
		enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(cw.o.Level)),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(maxZstdWindow), zstd.WithEncoderCRC(cw.o.NoTensorCRC))
		if err != nil {
			return err
		}
		defer enc.Close()
	}
	var raw []byte
	for i := range cw.tensors {
		t := &cw.tensors[i]
		if enc != nil {
			raw = raw[:0]
			if err := cw.emit(t, func(p []byte) error { raw = append(raw, p...); return nil }); err != nil {
				return err
			}
			if f := enc.EncodeAll(raw, nil); len(f) < len(raw) {
				t.frame = f
			}
		}
		if t.frame != nil {
			t.crc = crc32.Checksum(t.frame, castagnoli)
		} else if err := cw.emit(t, func(p []byte) error { t.crc = crc32.Update(t.crc, castagnoli, p); return nil }); err != nil {
			return err
		}
	}
	cw.layout()
	return nil
}

// layout computes the directory and the data section's length and CRC
// from the tensors' stored bytes.
func (cw *containerWriter) layout() {
	cw.dataLen = 0
	for i := range cw.tensors {
		cw.dataLen += cw.tensors[i].stored()
	}
	cw.dir = cw.encodeDirectory()
	// The data section's CRC covers its kind and length, then every tensor's
	// stored bytes; CRC-32C composes only by re-running, so run it.
	var hdr [sectionHeaderSize]byte
	putSectionHeader(hdr[:], secData, cw.dataLen)
	crc := crc32.Checksum(hdr[:9], castagnoli)
	for i := range cw.tensors {
		t := &cw.tensors[i]
		if t.frame != nil {
			crc = crc32.Update(crc, castagnoli, t.frame)
			continue
		}
		cw.emit(t, func(p []byte) error { crc = crc32.Update(crc, castagnoli, p); return nil })
	}
	cw.dataCRC = crc
}

// emit passes a tensor's uncompressed stored bytes to fn, in order and in
// pieces: views of the model's slices where the bytes are the same, small
// converted chunks where they are halves.
func (cw *containerWriter) emit(t *outTensor, fn func([]byte) error) error {
	name := t.displayName()
	floats := func(v []float32, half bool, what string) error {
		if !half {
			return fn(f32Bytes(v))
		}
		for len(v) > 0 {
			k := min(len(v), len(cw.halves)/2)
			for i, f := range v[:k] {
				h := floatToHalf(f)
				if h&0x7c00 == 0x7c00 && !math.IsInf(float64(f), 0) && !math.IsNaN(float64(f)) {
					return fmt.Errorf("models: %s %s: %g does not fit in a half", name, what, f)
				}
				binary.LittleEndian.PutUint16(cw.halves[2*i:], h)
			}
			if err := fn(cw.halves[:2*k]); err != nil {
				return err
			}
			v = v[k:]
		}
		return nil
	}
	switch {
	case t.packed != nil:
		return emitPacked(t.packed, fn)
	case t.mat == nil:
		return floats(t.vec, false, "values")
	case t.typ == TypeF32 || t.typ == TypeF16:
		return floats(t.mat.F, t.typ == TypeF16, "value")
	case t.typ == TypeF32S:
		if cw.shuf == nil {
			cw.shuf = make([]byte, 4*shuffleBlock)
		}
		v := t.mat.F
		for j0 := 0; j0 < len(v); j0 += shuffleBlock {
			k := min(shuffleBlock, len(v)-j0)
			in, buf := f32Bytes(v[j0:j0+k]), cw.shuf[:4*k]
			for i := 0; i < k; i++ {
				buf[i], buf[k+i], buf[2*k+i], buf[3*k+i] = in[4*i], in[4*i+1], in[4*i+2], in[4*i+3]
			}
			if err := fn(buf); err != nil {
				return err
			}
		}
		return nil
	case t.typ == TypeQ8:
		if err := fn(i8Bytes(t.mat.Q)); err != nil {
			return err
		}
	case t.typ == TypeQ4:
		var cb [q4CodebookSize]byte
		for i, v := range t.mat.Codebook {
			cb[i] = byte(v)
		}
		if err := fn(cb[:]); err != nil {
			return err
		}
		if err := fn(t.mat.P); err != nil {
			return err
		}
	}
	return floats(t.mat.S, t.scale == ScaleF16, "scale")
}

// encodeConfig lays out the config section body (FORMAT.md, Config).
func encodeConfig(m *core.Model) []byte {
	c := &m.Config
	b := make([]byte, 0, configSize+configHeadDimSize)
	for _, v := range []int{c.Dim, c.HiddenDim, c.NLayers, c.NHeads, c.NKVHeads, c.VocabSize, c.SeqLen} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(c.NormEps))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(c.RopeTheta))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.ActGroup))
	var flags byte
	if m.SharedClassifier() {
		flags |= cfgSharedClassifier
	}
	// head_dim only when it says something dim/n_heads does not: files of
	// ordinary models stay byte for byte what older writers wrote
	if c.HeadDim != 0 && (c.Dim%c.NHeads != 0 || c.HeadDim != c.Dim/c.NHeads) {
		flags |= cfgHeadDim
		return binary.LittleEndian.AppendUint32(append(b, flags), uint32(c.HeadDim))
	}
	return append(b, flags)
}

// encodeTokenizer lays out the tokenizer section body (FORMAT.md,
// Tokenizer): byte tokens are implied when they are the 256 standard pieces
// in a row, and integer scores (SentencePiece's negated merge ranks) take a
// byte or two each.
func encodeTokenizer(t *core.Tokenizer) ([]byte, error) {
	n := len(t.Vocab)
	base := uint32(noByteTokens)
	for i := 0; i+256 <= n; i++ {
		if t.Vocab[i] != "<0x00>" {
			continue
		}
		ok := true
		for b := 0; b < 256 && ok; b++ {
			ok = t.Vocab[i+b] == byteTokenText(byte(b))
		}
		if ok {
			base = uint32(i)
		}
		break
	}
	coding := byte(scoresInt)
	for _, s := range t.Scores {
		if !(s > -(1<<24) && s < 1<<24) || s != float32(int32(s)) {
			coding = scoresF32
			break
		}
	}
	b := make([]byte, 0, tokHeaderSize+n*8)
	for _, v := range []uint32{uint32(n), uint32(t.BOS), uint32(t.EOS), base} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = append(b, coding)
	for i, p := range t.Vocab {
		if base != noByteTokens && i >= int(base) && i < int(base)+256 {
			continue
		}
		if len(p) > maxTokenBytes {
			return nil, fmt.Errorf("models: token %d has %d bytes, above the limit %d", i, len(p), maxTokenBytes)
		}
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	if coding == scoresF32 {
		for _, s := range t.Scores {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(s))
		}
		return b, nil
	}
	var prev int64
	for _, s := range t.Scores {
		sm := 2*int64(math.Abs(float64(s))) + int64(math.Float32bits(s)>>31)
		d := sm - prev
		b = binary.AppendUvarint(b, uint64(d<<1^d>>63))
		prev = sm
	}
	return b, nil
}

// encodeDirectory lays out the tensor directory (FORMAT.md, Directory).
func (cw *containerWriter) encodeDirectory() []byte {
	b := binary.AppendUvarint(nil, uint64(len(cw.tensors)))
	for i := range cw.tensors {
		t := &cw.tensors[i]
		if cw.o.literalNames {
			name := t.displayName()
			b = append(append(b, nameLiteral, byte(len(name))), name...)
		} else {
			b = append(b, t.code)
			if t.code >= nameLayerFirst {
				b = binary.AppendUvarint(b, uint64(t.layer))
			}
		}
		b = append(b, byte(t.typ))
		if t.typ.grouped() {
			b = binary.AppendUvarint(b, uint64(t.gs))
			b = append(b, byte(t.scale))
		}
		if t.typ == TypeQK {
			cb := byte(codebookExplicit)
			if t.packed.Uniform {
				cb = codebookUniform
			}
			b = append(b, byte(t.packed.Bits), cb)
		}
		b = binary.AppendUvarint(b, uint64(t.rows))
		b = binary.AppendUvarint(b, uint64(t.cols))
		b = binary.AppendUvarint(b, uint64(t.stored()))
		if !cw.o.NoTensorCRC {
			b = binary.LittleEndian.AppendUint32(b, t.crc)
		}
	}
	return b
}

func putSectionHeader(h []byte, kind uint8, length int64) {
	h[0] = kind
	binary.LittleEndian.PutUint64(h[1:], uint64(length))
}

// payloadLen is the uncompressed payload's length.
func (cw *containerWriter) payloadLen() int64 {
	n := int64(4*sectionHeaderSize) + int64(len(cw.config)+len(cw.dir)) + cw.dataLen
	if cw.tok != nil {
		n += sectionHeaderSize + int64(len(cw.tok))
	}
	return n
}

// writePayload writes the sections.
func (cw *containerWriter) writePayload(w io.Writer) error {
	section := func(kind uint8, body []byte) error {
		var h [sectionHeaderSize]byte
		putSectionHeader(h[:], kind, int64(len(body)))
		crc := crc32.Checksum(h[:9], castagnoli)
		binary.LittleEndian.PutUint32(h[9:], crc32.Update(crc, castagnoli, body))
		if _, err := w.Write(h[:]); err != nil {
			return err
		}
		_, err := w.Write(body)
		return err
	}
	if err := section(secConfig, cw.config); err != nil {
		return err
	}
	if cw.tok != nil {
		if err := section(secTokenizer, cw.tok); err != nil {
			return err
		}
	}
	if err := section(secDirectory, cw.dir); err != nil {
		return err
	}
	var h [sectionHeaderSize]byte
	putSectionHeader(h[:], secData, cw.dataLen)
	binary.LittleEndian.PutUint32(h[9:], cw.dataCRC)
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	for i := range cw.tensors {
		t := &cw.tensors[i]
		var err error
		if t.frame != nil {
			_, err = w.Write(t.frame)
		} else {
			err = cw.emit(t, func(p []byte) error { _, err := w.Write(p); return err })
		}
		if err != nil {
			return err
		}
	}
	return section(secEnd, nil)
}

// write writes the preamble and the payload.
func (cw *containerWriter) write(w io.Writer) error {
	flags := cw.flags
	if !cw.o.NoTensorCRC {
		flags |= flagTensorCRC
	}
	n := cw.payloadLen()
	var compressed *bytes.Buffer
	if cw.o.Compression == CompressZstd {
		// The window need not exceed the payload: a smaller one costs the
		// reader less memory.
		win := max(zstd.MinWindowSize, min(maxZstdWindow, 1<<bits.Len64(uint64(n-1))))
		compressed = &bytes.Buffer{}
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(cw.o.Level)),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(win), zstd.WithEncoderCRC(true))
		if err != nil {
			return err
		}
		enc.ResetContentSize(compressed, n)
		if err := cw.writePayload(enc); err != nil {
			enc.Close()
			return err
		}
		if err := enc.Close(); err != nil {
			return err
		}
		n = int64(compressed.Len())
	}
	var pre [preambleSize]byte
	copy(pre[:], moteMagic)
	binary.LittleEndian.PutUint16(pre[4:], ContainerVersion)
	pre[6], pre[7] = byte(cw.o.Compression), flags
	binary.LittleEndian.PutUint64(pre[8:], uint64(n))
	binary.LittleEndian.PutUint32(pre[16:], crc32.Checksum(pre[:16], castagnoli))
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.Write(pre[:])
	if compressed != nil {
		bw.Write(compressed.Bytes())
	} else if err := cw.writePayload(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// floatToHalf rounds a float32 to the nearest IEEE 754 binary16 (ties to
// even); beyond the half range it gives infinity, NaNs stay NaN.
func floatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff:
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(mant>>13) // quiet NaN, top payload bits kept
	case exp > 127+15:
		return sign | 0x7c00
	case exp >= 127-14: // a normal half; a carry out of the mantissa rounds up the exponent
		h := uint32(exp-127+15)<<10 | mant>>13
		if rest := mant & 0x1fff; rest > 0x1000 || rest == 0x1000 && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	case exp < 127-25: // below half the smallest subnormal
		return sign
	}
	// a subnormal half: units of 2^-24
	m := mant | 0x800000
	shift := uint(126 - exp)
	h := m >> shift
	rest, halfway := m&(1<<shift-1), uint32(1)<<(shift-1)
	if rest > halfway || rest == halfway && h&1 == 1 {
		h++
	}
	return sign | uint16(h)
}
