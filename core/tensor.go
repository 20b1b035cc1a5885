package core

import "fmt"

// DType is how a matrix's values are stored in memory.
type DType uint8

const (
	F32 DType = iota // float32 values
	Q8               // int8 values with one float32 scale per group of a row
	Q4               // 4-bit indices into a 16-entry int8 codebook, one scale per group
)

func (t DType) String() string {
	switch t {
	case F32:
		return "f32"
	case Q8:
		return "q8"
	case Q4:
		return "q4"
	}
	return fmt.Sprintf("dtype(%d)", uint8(t))
}

// Mat is a row-major matrix used as y = W x: Rows outputs, Cols inputs.
// Quantized matrices are struct-of-arrays: values in Q or P, scales in S.
// Groups never straddle rows; a row of Cols values has ceil(Cols/GroupSize)
// groups and the last one may be shorter (any row length works).
// A weight's value is Codebook[index] * scale for Q4, q * scale for Q8.
type Mat struct {
	Type       DType
	Rows, Cols int
	GroupSize  int       // Q8, Q4: values per scale (the last group of a row may be shorter)
	F          []float32 // F32: (rows, cols)
	Q          []int8    // Q8: (rows, cols)
	P          []byte    // Q4: (rows, (cols+1)/2), value j of a row in byte j/2, low nibble first
	Codebook   [16]int8  // Q4: the values the 4-bit indices stand for
	S          []float32 // Q8, Q4: (rows, groupsPerRow)
}

// PackedRowBytes is the number of bytes one Q4 row takes.
func (m *Mat) PackedRowBytes() int { return (m.Cols + 1) / 2 }

// GroupsPerRow is the number of scale groups in one row.
func (m *Mat) GroupsPerRow() int {
	if m.GroupSize <= 0 {
		return 0
	}
	return (m.Cols + m.GroupSize - 1) / m.GroupSize
}

// NewMatF32 wraps fp32 values without copying them.
func NewMatF32(rows, cols int, f []float32) Mat {
	return Mat{Type: F32, Rows: rows, Cols: cols, F: f}
}

// NewMatQ4 wraps packed 4-bit indices, their codebook and per-group scales
// without copying them.
func NewMatQ4(rows, cols, groupSize int, p []byte, codebook [16]int8, s []float32) Mat {
	return Mat{Type: Q4, Rows: rows, Cols: cols, GroupSize: groupSize, P: p, Codebook: codebook, S: s}
}

// NewMatQ8 wraps int8 values and per-group scales without copying them.
func NewMatQ8(rows, cols, groupSize int, q []int8, s []float32) Mat {
	return Mat{Type: Q8, Rows: rows, Cols: cols, GroupSize: groupSize, Q: q, S: s}
}

// Check verifies that the slices hold exactly the declared shape.
func (m *Mat) Check() error {
	if m.Rows <= 0 || m.Cols <= 0 {
		return fmt.Errorf("%w: matrix shape %dx%d", ErrBadConfig, m.Rows, m.Cols)
	}
	n := m.Rows * m.Cols
	switch m.Type {
	case F32:
		if len(m.F) != n {
			return fmt.Errorf("%w: f32 matrix %dx%d holds %d values", ErrBadConfig, m.Rows, m.Cols, len(m.F))
		}
	case Q8, Q4:
		if m.GroupSize <= 0 {
			return fmt.Errorf("%w: group size %d", ErrBadConfig, m.GroupSize)
		}
		vals := len(m.Q)
		want := n
		if m.Type == Q4 {
			vals, want = len(m.P), m.Rows*m.PackedRowBytes()
		}
		if vals != want || len(m.S) != m.Rows*m.GroupsPerRow() {
			return fmt.Errorf("%w: %v matrix %dx%d (group %d) holds %d value bytes and %d scales",
				ErrBadConfig, m.Type, m.Rows, m.Cols, m.GroupSize, vals, len(m.S))
		}
	default:
		return fmt.Errorf("%w: matrix type %v", ErrBadConfig, m.Type)
	}
	return nil
}

// Row writes row i, dequantized, into dst (len Cols). For Q8 each value is
// q * scale in float32, as llama2.c's runq dequantizes its embedding table.
func (m *Mat) Row(i int, dst []float32) {
	dst = dst[:m.Cols]
	switch m.Type {
	case F32:
		copy(dst, m.F[i*m.Cols:(i+1)*m.Cols])
	case Q8:
		q := m.Q[i*m.Cols : (i+1)*m.Cols]
		gpr := m.GroupsPerRow()
		s := m.S[i*gpr : (i+1)*gpr]
		for j := range dst {
			dst[j] = float32(q[j]) * s[j/m.GroupSize]
		}
	case Q4:
		ps := m.PackedRowBytes()
		p := m.P[i*ps : (i+1)*ps]
		gpr := m.GroupsPerRow()
		s := m.S[i*gpr : (i+1)*gpr]
		for j := range dst {
			dst[j] = float32(m.Codebook[nibble(p, j)]) * s[j/m.GroupSize]
		}
	}
}

// nibble is the j-th 4-bit index of a packed row.
func nibble(p []byte, j int) byte { return p[j/2] >> (4 * (j & 1)) & 15 }

// Bytes is the in-memory size of the matrix's values and scales.
func (m *Mat) Bytes() int64 {
	return int64(len(m.F))*4 + int64(len(m.Q)) + int64(len(m.P)) + int64(len(m.S))*4
}
