package quant

import (
	"math"
	"sort"
)

// sparsify zeroes weights of every layer matrix in place (the embedding and
// classifier are left dense: every row of them is used). It returns the
// weights zeroed and the weights of the matrices it applied to.
func (p *pModel) sparsify(st *pStats, o PruneOptions) (zeroed, total int64) {
	for l := range p.layers {
		ly := &p.layers[l]
		var attIn, attOut, ffnIn, ffnHid []float64
		if st != nil {
			attIn, attOut, ffnIn, ffnHid = st.attIn[l], st.attOut[l], st.ffnIn[l], st.ffnHid[l]
		}
		for _, m := range []struct {
			w     []float32
			cols  int
			sumSq []float64
		}{
			{ly.wq, p.c.Dim, attIn}, {ly.wk, p.c.Dim, attIn}, {ly.wv, p.c.Dim, attIn},
			{ly.wo, p.qDim(), attOut},
			{ly.w1, p.c.Dim, ffnIn}, {ly.w3, p.c.Dim, ffnIn},
			{ly.w2, p.c.HiddenDim, ffnHid},
		} {
			var norm []float64
			if o.Method == Wanda {
				norm = make([]float64, m.cols)
				for j, v := range m.sumSq {
					norm[j] = math.Sqrt(v)
				}
			}
			zeroed += int64(sparsifyMat(m.w, m.cols, norm, o.Sparsity, o.N, o.M))
			total += int64(len(m.w))
		}
	}
	return zeroed, total
}

// sparsifyMat zeroes the prLowest-scoring weights of a (rows, cols) matrix in
// place and returns how many it zeroed. A weight's score is |W_ij|, times
// norm[j] when norm is not nil (Wanda). Weights compete within their row,
// as in Wanda.
//
// With m > 0 (N:M), every run of m consecutive weights of a row (the last
// run may be shorter) keeps its n best and loses the rest. Otherwise the
// matrix loses round(frac · rows · cols) weights, spread over the rows as
// evenly as possible (the first rows lose one more when it does not divide),
// so that the fraction is exact to one weight.
func sparsifyMat(w []float32, cols int, norm []float64, frac float64, n, m int) int {
	rows := len(w) / cols
	score := make([]float64, cols)
	idx := make([]int, cols)
	zeroLowest := func(row []float32, sc []float64, ix []int, k int) {
		for i := range ix {
			ix[i] = i
		}
		sort.SliceStable(ix, func(a, b int) bool { return sc[ix[a]] < sc[ix[b]] })
		for _, j := range ix[:k] {
			row[j] = 0
		}
	}
	zeroed := 0
	total := int(math.Round(frac * float64(rows) * float64(cols)))
	for r := 0; r < rows; r++ {
		row := w[r*cols : (r+1)*cols]
		for j, v := range row {
			score[j] = math.Abs(float64(v))
			if norm != nil {
				score[j] *= norm[j]
			}
		}
		if m > 0 {
			for g := 0; g < cols; g += m {
				e := min(g+m, cols)
				if k := (e - g) - n; k > 0 {
					zeroLowest(row[g:e], score[g:e], idx[:e-g], k)
					zeroed += k
				}
			}
			continue
		}
		k := total / rows
		if r < total%rows {
			k++
		}
		zeroLowest(row, score, idx, k)
		zeroed += k
	}
	return zeroed
}
