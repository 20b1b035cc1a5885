package models

import (
	"encoding/binary"
	"fmt"
	"math"

	"mote/core"
)

// The compact quantized forms of FORMAT.md: tensor type qk (k-bit indices,
// k = 2..8, into a per-tensor codebook) and scale type log8 (one byte per
// scale on a per-tensor logarithmic grid). Quantizers build a PackedMat and
// hand it to WriteContainer through WriteOptions.Packed; readers turn a qk
// tensor into the core matrix the kernels run (Q4 up to 4 bits, Q8 above).

// Codebook codings of a qk tensor (FORMAT.md, Tensor types).
const (
	codebookUniform  = 0 // value(i) = i - 2^(bits-1), not stored
	codebookExplicit = 1 // 2^bits int8 values stored before the indices
)

// Limits of the qk type and the log8 scales.
const (
	minPackedBits  = 2
	maxPackedBits  = 8
	log8HeaderSize = 5 // f32 base, u8 steps
)

// PackedMat is a matrix in the container's qk form: Bits-bit indices into a
// codebook of 2^Bits int8 values, and one scale per group of GroupSize
// values of a row (the last group of a row may be shorter). A weight is
// Codebook[index] x scale.
type PackedMat struct {
	Rows, Cols int
	Bits       int
	GroupSize  int
	Uniform    bool   // the codebook is i - 2^(Bits-1) and is not stored
	Codebook   []int8 // (2^Bits), filled also when Uniform
	Idx        []uint8
	Scale      ScaleType
	// Scales: S holds the decoded float32 values (what the kernels use);
	// Codes their stored form: f16 bits or log8 codes (nil for f32).
	S     []float32 // (rows, groups per row)
	Codes []uint16
	// ScaleLog8: scale(code) = Log8Table(LogBase, LogSteps)[code].
	LogBase  float32
	LogSteps int
}

// GroupsPerRow is the number of scale groups in one row.
func (p *PackedMat) GroupsPerRow() int { return (p.Cols + p.GroupSize - 1) / p.GroupSize }

// UniformCodebook is the implicit codebook of a uniform qk tensor.
func UniformCodebook(bits int) []int8 {
	cb := make([]int8, 1<<bits)
	for i := range cb {
		cb[i] = int8(i - len(cb)/2)
	}
	return cb
}

// Check verifies that the parts are consistent: sizes, index range, the
// uniform codebook, and that every scale decodes from its code.
func (p *PackedMat) Check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("models: packed matrix: "+format, a...)
	}
	switch {
	case p.Rows <= 0 || p.Cols <= 0:
		return bad("shape %dx%d", p.Rows, p.Cols)
	case p.Bits < minPackedBits || p.Bits > maxPackedBits:
		return bad("%d bits (2..8)", p.Bits)
	case p.GroupSize <= 0 || p.GroupSize > maxGroupSize:
		return bad("group size %d", p.GroupSize)
	case len(p.Codebook) != 1<<p.Bits:
		return bad("%d codebook entries for %d bits", len(p.Codebook), p.Bits)
	case len(p.Idx) != p.Rows*p.Cols:
		return bad("%d indices for %dx%d", len(p.Idx), p.Rows, p.Cols)
	case len(p.S) != p.Rows*p.GroupsPerRow():
		return bad("%d scales, want %d", len(p.S), p.Rows*p.GroupsPerRow())
	case p.Scale > ScaleLog8:
		return bad("scale type %v", p.Scale)
	case p.Scale != ScaleF32 && len(p.Codes) != len(p.S):
		return bad("%d scale codes for %d scales", len(p.Codes), len(p.S))
	}
	if p.Uniform {
		for i, v := range UniformCodebook(p.Bits) {
			if p.Codebook[i] != v {
				return bad("codebook marked uniform is not i - 2^(bits-1)")
			}
		}
	}
	for _, x := range p.Idx {
		if int(x) >= 1<<p.Bits {
			return bad("index %d does not fit in %d bits", x, p.Bits)
		}
	}
	var table [256]float32
	if p.Scale == ScaleLog8 {
		var err error
		if table, err = log8Table(p.LogBase, p.LogSteps); err != nil {
			return bad("%v", err)
		}
	}
	for i, s := range p.S {
		var want float32
		switch p.Scale {
		case ScaleF32:
			continue
		case ScaleF16:
			want = halfToFloat(p.Codes[i])
		case ScaleLog8:
			if p.Codes[i] > 255 {
				return bad("log8 code %d", p.Codes[i])
			}
			want = table[p.Codes[i]]
		}
		if math.Float32bits(want) != math.Float32bits(s) {
			return bad("scale %d is %g, its code %d stands for %g", i, s, p.Codes[i], want)
		}
	}
	return nil
}

// Core is the matrix the kernels run: up to 4 bits a core.Q4 whose codebook
// is padded with zeros to 16 entries, above that a core.Q8 holding
// codebook[index]. Reading a container gives the same matrix.
func (p *PackedMat) Core() core.Mat {
	s := append([]float32(nil), p.S...)
	if p.Bits <= 4 {
		var cb [16]int8
		copy(cb[:], p.Codebook)
		ps := (p.Cols + 1) / 2
		pk := make([]byte, p.Rows*ps)
		for i := 0; i < p.Rows; i++ {
			row := p.Idx[i*p.Cols : (i+1)*p.Cols]
			for j, x := range row {
				pk[i*ps+j/2] |= x << (4 * (j & 1))
			}
		}
		return core.NewMatQ4(p.Rows, p.Cols, p.GroupSize, pk, cb, s)
	}
	q := make([]int8, len(p.Idx))
	for i, x := range p.Idx {
		q[i] = p.Codebook[x]
	}
	return core.NewMatQ8(p.Rows, p.Cols, p.GroupSize, q, s)
}

// RawBytes is the tensor's stored size in the container (uncompressed).
func (p *PackedMat) RawBytes() int64 {
	return qkRawSize(p.Rows, p.Cols, p.GroupSize, p.Bits, !p.Uniform, p.Scale)
}

func qkRawSize(rows, cols, gs, bits int, explicit bool, st ScaleType) int64 {
	r, c := int64(rows), int64(cols)
	n := (r*c*int64(bits) + 7) / 8
	if explicit {
		n += 1 << bits
	}
	return n + scalesSize(r, int64((cols+gs-1)/gs), st)
}

// scalesSize is the stored size of r x g scales of a type.
func scalesSize(r, g int64, st ScaleType) int64 {
	if st == ScaleLog8 {
		return log8HeaderSize + r*g
	}
	return r * g * st.bytes()
}

// HalfBits rounds a float32 to the nearest IEEE binary16 (ties to even), as
// the container stores f16 scales and values.
func HalfBits(f float32) uint16 { return floatToHalf(f) }

// HalfFloat widens IEEE binary16 bits to float32 exactly.
func HalfFloat(h uint16) float32 { return halfToFloat(h) }

// Log8Table is the 256 scales the codes of a log8 scale type stand for
// (FORMAT.md, Scale types): code c is base x t[c mod steps] x 2^(c div
// steps), rounded once to float32, where t[m] is the float32 nearest to
// 2^(m/steps). base must be a positive normal float32 and steps 1..255, and
// no scale may overflow.
func Log8Table(base float32, steps int) ([256]float32, error) { return log8Table(base, steps) }

func log8Table(base float32, steps int) ([256]float32, error) {
	var t [256]float32
	if steps < 1 || steps > 255 {
		return t, fmt.Errorf("log8 steps %d outside 1..255", steps)
	}
	if !(base >= math.SmallestNonzeroFloat32*(1<<23) && base <= math.MaxFloat32) { // normal, positive, finite
		return t, fmt.Errorf("log8 base %g is not a positive normal number", base)
	}
	for c := range t {
		frac := float32(math.Exp2(float64(c%steps) / float64(steps)))
		// frac x 2^e is exact in float64; one rounding to float32
		v := float32(float64(base) * math.Ldexp(float64(frac), c/steps))
		if math.IsInf(float64(v), 0) {
			return t, fmt.Errorf("log8 base %g with %d steps overflows at code %d", base, steps, c)
		}
		t[c] = v
	}
	return t, nil
}

// emitPacked passes a qk tensor's stored bytes to fn: codebook (when
// explicit), indices as one bit stream, then the scales.
func emitPacked(p *PackedMat, fn func([]byte) error) error {
	if !p.Uniform {
		cb := make([]byte, len(p.Codebook))
		for i, v := range p.Codebook {
			cb[i] = byte(v)
		}
		if err := fn(cb); err != nil {
			return err
		}
	}
	// indices: index n at stream bits n*bits.., low bits first
	const chunk = 4096
	buf := make([]byte, 0, chunk+8)
	var acc uint64
	var nacc uint
	k := uint(p.Bits)
	for _, x := range p.Idx {
		acc |= uint64(x) << nacc
		nacc += k
		for nacc >= 8 {
			buf = append(buf, byte(acc))
			acc >>= 8
			nacc -= 8
		}
		if len(buf) >= chunk {
			if err := fn(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if nacc > 0 {
		buf = append(buf, byte(acc))
	}
	if err := fn(buf); err != nil {
		return err
	}
	return emitScales(p.Scale, p.S, p.Codes, p.LogBase, p.LogSteps, fn)
}

// emitScales writes scales in their stored form.
func emitScales(st ScaleType, s []float32, codes []uint16, base float32, steps int, fn func([]byte) error) error {
	switch st {
	case ScaleF32:
		return fn(f32Bytes(s))
	case ScaleF16:
		b := make([]byte, 2*len(codes))
		for i, c := range codes {
			binary.LittleEndian.PutUint16(b[2*i:], c)
		}
		return fn(b)
	}
	b := make([]byte, log8HeaderSize, log8HeaderSize+len(codes))
	binary.LittleEndian.PutUint32(b, math.Float32bits(base))
	b[4] = byte(steps)
	for _, c := range codes {
		b = append(b, byte(c))
	}
	return fn(b)
}

// readScales reads r x g scales of any scale type into s.
func readScales(src *cReader, s []float32, st ScaleType, what string) {
	if st != ScaleLog8 {
		readFloats(src, s, st == ScaleF16, what)
		return
	}
	var hdr [log8HeaderSize]byte
	if !src.read(hdr[:], what+" log8 base and steps") {
		return
	}
	table, err := log8Table(math.Float32frombits(binary.LittleEndian.Uint32(hdr[:])), int(hdr[4]))
	if err != nil {
		src.off -= log8HeaderSize
		src.fail(ErrCorrupt, "%s: %v", what, err)
		return
	}
	// the codes go into the upper quarter of s's bytes and are widened
	// front to back, which never overwrites a code before it is read
	b := f32Bytes(s)
	n := len(s)
	if !src.read(b[3*n:], what) {
		return
	}
	for i := range s {
		s[i] = table[b[3*n+i]]
	}
}

// readPacked reads a qk tensor's stored bytes into its core matrix.
func readPacked(src *cReader, e *dirEntry, mat *core.Mat) {
	k := e.Bits
	var cb []int8
	if e.Codebook {
		raw := make([]byte, 1<<k)
		if !src.read(raw, e.Name+" codebook") {
			return
		}
		cb = make([]int8, len(raw))
		for i, v := range raw {
			cb[i] = int8(v)
		}
	} else {
		cb = UniformCodebook(k)
	}
	n := e.Rows * e.Cols
	stream := make([]byte, (int64(n)*int64(k)+7)/8)
	if !src.read(stream, e.Name+" indices") {
		return
	}
	if pad := uint(int64(n)*int64(k)) % 8; pad != 0 && stream[len(stream)-1]>>pad != 0 {
		src.fail(ErrCorrupt, "%s: padding bits after the last index are not zero", e.Name)
		return
	}
	gpr := (e.Cols + e.GroupSize - 1) / e.GroupSize
	s := make([]float32, e.Rows*gpr)
	// unpack straight into the in-memory layout
	var acc uint64
	var nacc uint
	pos := 0
	mask := uint64(1)<<k - 1
	next := func() uint8 {
		for nacc < uint(k) {
			acc |= uint64(stream[pos]) << nacc
			pos++
			nacc += 8
		}
		x := uint8(acc & mask)
		acc >>= uint(k)
		nacc -= uint(k)
		return x
	}
	if k <= 4 {
		var book [16]int8
		copy(book[:], cb)
		ps := (e.Cols + 1) / 2
		pk := make([]byte, e.Rows*ps)
		for i := 0; i < e.Rows; i++ {
			for j := 0; j < e.Cols; j++ {
				pk[i*ps+j/2] |= next() << (4 * (j & 1))
			}
		}
		*mat = core.NewMatQ4(e.Rows, e.Cols, e.GroupSize, pk, book, s)
	} else {
		q := make([]int8, n)
		for i := range q {
			q[i] = cb[next()]
		}
		*mat = core.NewMatQ8(e.Rows, e.Cols, e.GroupSize, q, s)
	}
	readScales(src, s, e.Scale, e.Name+" scales")
}

// checkPacked verifies a packed form and that it decodes to exactly the
// model's matrix (so that the file holds the model that was evaluated).
func checkPacked(p *PackedMat, m *core.Mat) error {
	if err := p.Check(); err != nil {
		return err
	}
	want := p.Core()
	same := m.Type == want.Type && m.Rows == want.Rows && m.Cols == want.Cols && m.GroupSize == want.GroupSize &&
		len(m.S) == len(want.S) && string(f32Bytes(m.S)) == string(f32Bytes(want.S))
	if same {
		switch m.Type {
		case core.Q8:
			same = string(i8Bytes(m.Q)) == string(i8Bytes(want.Q))
		case core.Q4:
			same = string(m.P) == string(want.P) && m.Codebook == want.Codebook
		}
	}
	if !same {
		return fmt.Errorf("the packed form (%d bits, groups of %d) does not decode to the model's %v matrix", p.Bits, p.GroupSize, m.Type)
	}
	return nil
}
