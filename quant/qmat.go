package quant

import (
	"errors"

	"mote/models"
)

// ErrQuant reports a quantization that cannot be done as asked.
var ErrQuant = errors.New("quant")

// Scale types, as the container stores them.
const (
	ScaleF32  = models.ScaleF32  // float32
	ScaleF16  = models.ScaleF16  // IEEE half precision
	ScaleLog8 = models.ScaleLog8 // an 8-bit code on a per-tensor logarithmic grid
)

// dequantPacked returns the weights a packed matrix stands for, in float64.
func dequantPacked(q *models.PackedMat) []float64 {
	out := make([]float64, q.Rows*q.Cols)
	gpr := q.GroupsPerRow()
	for i := 0; i < q.Rows; i++ {
		for j := 0; j < q.Cols; j++ {
			out[i*q.Cols+j] = float64(q.Codebook[q.Idx[i*q.Cols+j]]) * float64(q.S[i*gpr+j/q.GroupSize])
		}
	}
	return out
}
