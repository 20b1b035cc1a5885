package core

import "fmt"

// DType is how a matrix's values are stored in memory.
type DType uint8

const (
	F32 DType = iota // float32 values
	Q8               // int8 values with one float32 scale per group of a row
)

func (t DType) String() string {
	switch t {
	case F32:
		return "f32"
	case Q8:
		return "q8"
	}
	return fmt.Sprintf("dtype(%d)", uint8(t))
}

// Mat is a row-major matrix used as y = W x: Rows outputs, Cols inputs.
// Quantized matrices are struct-of-arrays: values in Q, scales in S.
// Groups never straddle rows; a row of Cols values has ceil(Cols/GroupSize)
// groups and the last one may be shorter (any row length works).
type Mat struct {
	Type       DType
	Rows, Cols int
	GroupSize  int       // Q8: values per scale (the last group of a row may be shorter)
	F          []float32 // F32: (rows, cols)
	Q          []int8    // Q8: (rows, cols)
	S          []float32 // Q8: (rows, groupsPerRow)
}

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
	case Q8:
		if m.GroupSize <= 0 || m.GroupSize > m.Cols && m.GroupSize > 1<<16 {
			return fmt.Errorf("%w: group size %d", ErrBadConfig, m.GroupSize)
		}
		if len(m.Q) != n || len(m.S) != m.Rows*m.GroupsPerRow() {
			return fmt.Errorf("%w: q8 matrix %dx%d (group %d) holds %d values and %d scales",
				ErrBadConfig, m.Rows, m.Cols, m.GroupSize, len(m.Q), len(m.S))
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
	}
}

// Bytes is the in-memory size of the matrix's values and scales.
func (m *Mat) Bytes() int64 {
	return int64(len(m.F))*4 + int64(len(m.Q)) + int64(len(m.S))*4
}
