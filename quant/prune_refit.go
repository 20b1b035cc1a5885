package quant

import "math"

// Least-squares refit after structured pruning. Removing FFN neurons (or
// heads) removes columns of w2 (or wo); what those columns contributed is
// partly predictable from the columns that stay, because activations are
// correlated. The refit gives the kept columns new values that reproduce
// the original matrix's outputs on the calibration tokens as well as a
// linear map can:
//
//	W' = argmin Σ_t ‖W x_t − W' x_t[keep]‖²  =  W G[:,keep] (G[keep,keep] + λI)⁻¹
//
// with G = Σ_t x_t x_tᵀ the Gram matrix of the matrix's input. The ridge
// term λ = pruneRidge · mean(diag G[keep,keep]) keeps the solve stable when
// calibration does not excite every direction. (This is the closed form of
// the reconstruction step in structured-pruning work such as FLAP's bias
// compensation, generalised from a constant to a linear map.)
const pruneRidge = 1e-2

// prRefit returns the (rows, len(keep)) matrix W' above for a (rows, cols)
// matrix w, or the plain column selection when the system cannot be solved.
func prRefit(w []float32, cols int, gram []float64, keep []int) []float32 {
	k := len(keep)
	rows := len(w) / cols
	a := make([]float64, k*k)
	var tr float64
	for i, ci := range keep {
		for j, cj := range keep {
			a[i*k+j] = gram[ci*cols+cj]
		}
		tr += gram[ci*cols+ci]
	}
	lambda := pruneRidge * tr / float64(k)
	if !(lambda > 0) {
		return prPickCols(w, cols, keep)
	}
	for i := 0; i < k; i++ {
		a[i*k+i] += lambda
	}
	if !cholesky(a, k) {
		return prPickCols(w, cols, keep)
	}
	out := make([]float32, rows*k)
	b := make([]float64, k)
	for r := 0; r < rows; r++ {
		row := w[r*cols : (r+1)*cols]
		// b = W[r,:] G[:,keep]
		for j, cj := range keep {
			var s float64
			for c, v := range row {
				s += float64(v) * gram[c*cols+cj]
			}
			b[j] = s
		}
		cholSolve(a, k, b)
		for j, v := range b {
			out[r*k+j] = float32(v)
		}
	}
	return out
}

// cholesky factors the symmetric positive definite a (n x n, row-major) in
// place into L (lower triangle, a = L Lᵀ); false when a is not positive
// definite.
func cholesky(a []float64, n int) bool {
	for j := 0; j < n; j++ {
		d := a[j*n+j]
		for k := 0; k < j; k++ {
			d -= a[j*n+k] * a[j*n+k]
		}
		if !(d > 0) {
			return false
		}
		d = math.Sqrt(d)
		a[j*n+j] = d
		for i := j + 1; i < n; i++ {
			s := a[i*n+j]
			for k := 0; k < j; k++ {
				s -= a[i*n+k] * a[j*n+k]
			}
			a[i*n+j] = s / d
		}
	}
	return true
}

// cholSolve solves L Lᵀ x = b in place, L from cholesky.
func cholSolve(l []float64, n int, b []float64) {
	for i := 0; i < n; i++ {
		s := b[i]
		for k := 0; k < i; k++ {
			s -= l[i*n+k] * b[k]
		}
		b[i] = s / l[i*n+i]
	}
	for i := n - 1; i >= 0; i-- {
		s := b[i]
		for k := i + 1; k < n; k++ {
			s -= l[k*n+i] * b[k]
		}
		b[i] = s / l[i*n+i]
	}
}

// obsSelect chooses n columns of a (rows, cols) matrix to remove, one at a
// time, each time the one whose loss costs least once the others compensate
// for it (Optimal Brain Surgeon on whole columns; Hassibi & Stork 1993, as
// structured-pruning work applies it to LLM layers): with H = G + λI and
// its inverse Hi, removing column j costs Σ_i W[i,j]² / Hi[j,j]; then W and
// Hi are updated as if j had never been there. It returns the kept columns
// (ascending) and W restricted to them, already compensated, or ok false
// when H cannot be inverted.
func obsSelect(w []float32, cols int, gram []float64, n int) (keep []int, out []float32, ok bool) {
	rows := len(w) / cols
	h := make([]float64, cols*cols)
	copy(h, gram)
	var tr float64
	for i := 0; i < cols; i++ {
		tr += h[i*cols+i]
	}
	lambda := pruneRidge * tr / float64(cols)
	if !(lambda > 0) {
		return nil, nil, false
	}
	for i := 0; i < cols; i++ {
		h[i*cols+i] += lambda
	}
	hi, ok := invertSPD(h, cols)
	if !ok {
		return nil, nil, false
	}
	wd := make([]float64, len(w))
	for i, v := range w {
		wd[i] = float64(v)
	}
	alive := make([]bool, cols)
	for i := range alive {
		alive[i] = true
	}
	for step := 0; step < n; step++ {
		best, bestCost := -1, math.Inf(1)
		for j := 0; j < cols; j++ {
			if !alive[j] {
				continue
			}
			var s float64
			for i := 0; i < rows; i++ {
				v := wd[i*cols+j]
				s += v * v
			}
			if c := s / hi[j*cols+j]; c < bestCost {
				best, bestCost = j, c
			}
		}
		j := best
		d := hi[j*cols+j]
		// W -= W[:,j] Hi[j,:] / Hi[j,j]; column j becomes zero
		for i := 0; i < rows; i++ {
			f := wd[i*cols+j] / d
			if f == 0 {
				continue
			}
			row := wd[i*cols : (i+1)*cols]
			hr := hi[j*cols : (j+1)*cols]
			for k := range row {
				row[k] -= f * hr[k]
			}
		}
		// Hi -= Hi[:,j] Hi[j,:] / Hi[j,j]
		hj := append([]float64(nil), hi[j*cols:(j+1)*cols]...)
		for a := 0; a < cols; a++ {
			f := hj[a] / d
			if f == 0 {
				continue
			}
			row := hi[a*cols : (a+1)*cols]
			for b := range row {
				row[b] -= f * hj[b]
			}
		}
		alive[j] = false
	}
	for j, a := range alive {
		if a {
			keep = append(keep, j)
		}
	}
	out = make([]float32, rows*len(keep))
	for i := 0; i < rows; i++ {
		for k, j := range keep {
			out[i*len(keep)+k] = float32(wd[i*cols+j])
		}
	}
	return keep, out, true
}

// invertSPD inverts a symmetric positive definite matrix through its
// Cholesky factor.
func invertSPD(a []float64, n int) ([]float64, bool) {
	l := append([]float64(nil), a...)
	if !cholesky(l, n) {
		return nil, false
	}
	inv := make([]float64, n*n)
	col := make([]float64, n)
	for j := 0; j < n; j++ {
		clear(col)
		col[j] = 1
		cholSolve(l, n, col)
		for i := 0; i < n; i++ {
			inv[i*n+j] = col[i]
		}
	}
	return inv, true
}
