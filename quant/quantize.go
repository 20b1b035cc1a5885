package quant

import (
	"fmt"
	"math"
	"slices"

	"mote/models"
)

// Book names a codebook family.
type Book uint8

const (
	BookUniform Book = iota // i - 2^(bits-1): an evenly spaced grid, one more value below zero
	BookNL                  // a fixed non-linear grid, denser near zero (IQ4_NL's values at 4 bits)
	BookLearned             // fitted per tensor to its importance-weighted weights (Lloyd iterations)
)

func (b Book) String() string {
	switch b {
	case BookUniform:
		return "uniform"
	case BookNL:
		return "nl"
	case BookLearned:
		return "learned"
	}
	return fmt.Sprintf("book(%d)", uint8(b))
}

// Spec is how one matrix is quantized.
type Spec struct {
	Bits  int              // index bits, 2..8
	Group int              // values per scale; 0 (or >= the row length) means one scale per row
	Scale models.ScaleType // how scales are stored
	Book  Book             // codebook family
	GPTQ  bool             // error feedback through the calibration Gram matrix
}

func (s Spec) String() string { return FormatSpec(&s) }

// Check reports a spec that cannot be quantized.
func (s Spec) Check() error {
	if s.Bits < 2 || s.Bits > 8 {
		return fmt.Errorf("%w: %d bits (2..8 supported)", ErrQuant, s.Bits)
	}
	if s.Group < 0 {
		return fmt.Errorf("%w: group size %d", ErrQuant, s.Group)
	}
	if s.Scale > ScaleLog8 || s.Book > BookLearned {
		return fmt.Errorf("%w: unknown scale encoding or codebook in %v", ErrQuant, s)
	}
	return nil
}

// iq4nlValues are the 16 levels of llama.cpp's IQ4_NL (a non-uniform grid
// fitted to roughly Gaussian weights).
var iq4nlValues = []int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// InitialCodebook is the starting grid of a codebook family, sorted.
func InitialCodebook(bits int, b Book) []int8 {
	n := 1 << bits
	cb := make([]int8, n)
	if b != BookUniform && bits == 4 {
		copy(cb, iq4nlValues)
		return cb
	}
	if b == BookUniform || bits == 8 {
		return models.UniformCodebook(bits)
	}
	// Other widths: quantiles of a unit normal at (i+0.5)/n, scaled so the
	// largest magnitude is 127 (close to Lloyd-Max for a Gaussian).
	q := make([]float64, n)
	for i := range q {
		q[i] = math.Sqrt2 * math.Erfinv(2*(float64(i)+0.5)/float64(n)-1)
	}
	m := max(-q[0], q[n-1])
	for i := range cb {
		cb[i] = int8(math.Round(q[i] / m * 127))
	}
	return cb
}

// grid finds the nearest codebook value of x fast: cb is sorted ascending.
type grid struct {
	cb   []float64
	mids []float64 // mids[i] = (cb[i]+cb[i+1])/2
	lo   float64   // most negative, most positive values
	hi   float64
}

func newGrid(cb []int8) *grid {
	g := &grid{cb: make([]float64, len(cb)), mids: make([]float64, len(cb)-1)}
	for i, v := range cb {
		g.cb[i] = float64(v)
	}
	for i := range g.mids {
		g.mids[i] = (g.cb[i] + g.cb[i+1]) / 2
	}
	g.lo, g.hi = g.cb[0], g.cb[len(cb)-1]
	return g
}

// nearest is the index of the codebook value closest to x.
func (g *grid) nearest(x float64) int {
	lo, hi := 0, len(g.mids)
	for lo < hi {
		m := (lo + hi) / 2
		if x > g.mids[m] {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// idealScale maps the group's largest magnitude onto the codebook's end on
// the same side.
func (g *grid) idealScale(w []float64) float64 {
	var mx, mn float64
	for _, v := range w {
		mx, mn = max(mx, v), min(mn, v)
	}
	s := 0.0
	if g.hi > 0 {
		s = mx / g.hi
	}
	if g.lo < 0 {
		s = max(s, mn/g.lo)
	}
	return s
}

// scaler chooses and encodes the scale of one group.
type scaler struct {
	g     *grid
	enc   models.ScaleType
	table [256]float32 // ScaleLog8
	idx   []int        // scratch assignments
	best  []int
}

// groupErr assigns w/s to the grid and returns Σ d (w - s·cb)².
func (sc *scaler) groupErr(w, d []float64, s float64, idx []int) float64 {
	var e float64
	if s == 0 {
		for j, v := range w {
			idx[j] = sc.g.nearest(0)
			e += d[j] * v * v
		}
		return e
	}
	inv := 1 / s
	for j, v := range w {
		k := sc.g.nearest(v * inv)
		idx[j] = k
		r := v - s*sc.g.cb[k]
		e += d[j] * r * r
	}
	return e
}

// lsScale is the scale minimising Σ d (w - s·cb[idx])² for fixed indices.
func (sc *scaler) lsScale(w, d []float64, idx []int) float64 {
	var num, den float64
	for j, v := range w {
		c := sc.g.cb[idx[j]]
		num += d[j] * v * c
		den += d[j] * c * c
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// The scale search tries scales from searchLo to searchHi times the one
// that maps the group's largest magnitude onto the codebook's end: at 2
// bits the best scale clips hard (about half of that), at 8 bits it is
// close to 1.
const searchLo, searchHi = 0.3, 1.3

// choose searches the scale of a group minimising the importance-weighted
// error and returns its decoded value, its code, and the indices (in idx).
func (sc *scaler) choose(w, d []float64, idx []int) (float32, uint16) {
	if cap(sc.idx) < len(w) {
		sc.idx, sc.best = make([]int, len(w)), make([]int, len(w))
	}
	tmp, best := sc.idx[:len(w)], sc.best[:len(w)]
	s0 := sc.g.idealScale(w)
	bestErr := math.Inf(1)
	var bestS float32
	var bestCode uint16
	try := func(s float32, code uint16) {
		if e := sc.groupErr(w, d, float64(s), tmp); e < bestErr {
			bestErr, bestS, bestCode = e, s, code
			copy(best, tmp)
		}
	}
	switch sc.enc {
	case ScaleLog8:
		for c := sc.code(s0 * searchLo); c <= sc.code(s0*searchHi); c++ {
			try(sc.table[c], uint16(c))
		}
	default:
		enc := func(s float64) (float32, uint16) {
			if sc.enc == ScaleF16 {
				h := models.HalfBits(float32(s))
				return models.HalfFloat(h), h
			}
			return float32(s), 0
		}
		try(enc(s0))
		if s0 > 0 {
			for k := 0; k <= 50; k++ {
				s := s0 * (searchLo + (searchHi-searchLo)*float64(k)/50)
				sc.groupErr(w, d, s, tmp)
				if s2 := sc.lsScale(w, d, tmp); s2 > 0 {
					try(enc(s2))
				}
				try(enc(s))
			}
		}
	}
	copy(idx, best)
	return bestS, bestCode
}

// code is the log8 code nearest to scale s (clamped to 0..255).
func (sc *scaler) code(s float64) int {
	lo, hi := 0, 255
	for lo < hi { // first code whose scale is >= s
		m := (lo + hi) / 2
		if float64(sc.table[m]) < s {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo > 0 && s-float64(sc.table[lo-1]) < float64(sc.table[lo])-s {
		lo--
	}
	return lo
}

// log8Grid picks a tensor's log8 base and steps so that the 256 codes span
// every group's search range (searchLo times the smallest ideal scale to
// searchHi times the largest), as finely as that span allows.
func log8Grid(ideal []float64) (float32, int) {
	lo, hi := math.Inf(1), 0.0
	for _, s := range ideal {
		hi = max(hi, s)
	}
	for _, s := range ideal {
		if s > hi*1e-6 { // ignore groups that are (nearly) all zero
			lo = min(lo, s)
		}
	}
	if hi == 0 { // an all-zero tensor: scales as small as the grid goes
		return 1e-30, 32
	}
	lo, hi = lo*searchLo, hi*searchHi
	steps := int(math.Floor(255 / math.Log2(hi/lo)))
	steps = max(1, min(steps, 255))
	return float32(lo), steps
}

// QuantizeMat quantizes a rows x cols matrix (row-major, y = W x). h is the
// calibration Gram matrix of the input (cols x cols), or nil to weigh every
// column equally.
func QuantizeMat(w []float32, rows, cols int, h *Gram, spec Spec) (*models.PackedMat, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	if rows <= 0 || cols <= 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("%w: %d values for a %dx%d matrix", ErrQuant, len(w), rows, cols)
	}
	if h != nil && h.N != cols {
		return nil, fmt.Errorf("%w: Gram matrix of %d columns for a matrix of %d", ErrQuant, h.N, cols)
	}
	gs := spec.Group
	if gs <= 0 || gs > cols {
		gs = cols
	}
	d := make([]float64, cols)
	for j := range d {
		d[j] = 1
		if h != nil {
			d[j] = h.H[j*cols+j]
		}
	}
	// columns that calibration never saw still matter a little
	var dmean float64
	for _, v := range d {
		dmean += v
	}
	dmean /= float64(cols)
	for j := range d {
		d[j] = max(d[j], 1e-3*dmean)
		if dmean == 0 {
			d[j] = 1
		}
	}
	w64 := make([]float64, len(w))
	for i, v := range w {
		w64[i] = float64(v)
	}
	cb := InitialCodebook(spec.Bits, spec.Book)
	if spec.Book == BookLearned {
		cb = learnCodebook(w64, rows, cols, gs, d, cb)
	}
	q := &models.PackedMat{Rows: rows, Cols: cols, Bits: spec.Bits, GroupSize: gs, Codebook: cb, Scale: spec.Scale,
		Uniform: slices.Equal(cb, models.UniformCodebook(spec.Bits)), Idx: make([]uint8, rows*cols)}
	gpr := q.GroupsPerRow()
	q.S = make([]float32, rows*gpr)
	if spec.Scale != ScaleF32 {
		q.Codes = make([]uint16, rows*gpr)
	}
	sc := &scaler{g: newGrid(cb), enc: spec.Scale}
	if spec.Scale == ScaleLog8 {
		ideal := make([]float64, 0, rows*gpr)
		for i := 0; i < rows; i++ {
			for j0 := 0; j0 < cols; j0 += gs {
				ideal = append(ideal, sc.g.idealScale(w64[i*cols+j0:i*cols+min(j0+gs, cols)]))
			}
		}
		q.LogBase, q.LogSteps = log8Grid(ideal)
		var err error
		if sc.table, err = models.Log8Table(q.LogBase, q.LogSteps); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrQuant, err)
		}
	}
	var u []float64
	if spec.GPTQ && h != nil {
		var err error
		if u, err = gptqFactor(h); err != nil {
			return nil, err
		}
	}
	idx := make([]int, cols)
	row := make([]float64, cols)
	for i := 0; i < rows; i++ {
		copy(row, w64[i*cols:(i+1)*cols])
		for g, j0 := 0, 0; j0 < cols; g, j0 = g+1, j0+gs {
			j1 := min(j0+gs, cols)
			s, code := sc.choose(row[j0:j1], d[j0:j1], idx[j0:j1])
			q.S[i*gpr+g] = s
			if q.Codes != nil {
				q.Codes[i*gpr+g] = code
			}
			if u == nil {
				for j := j0; j < j1; j++ {
					q.Idx[i*cols+j] = uint8(idx[j])
				}
				continue
			}
			// GPTQ: quantize column by column, pushing each error onto
			// the columns not yet quantized (row i of W, all of them).
			for j := j0; j < j1; j++ {
				k := 0
				if s != 0 {
					k = sc.g.nearest(row[j] / float64(s))
				} else {
					k = sc.g.nearest(0)
				}
				q.Idx[i*cols+j] = uint8(k)
				e := (row[j] - float64(s)*sc.g.cb[k]) / u[j*cols+j]
				ur := u[j*cols : (j+1)*cols]
				for t := j + 1; t < cols; t++ {
					row[t] -= e * ur[t]
				}
			}
		}
	}
	return q, nil
}

// gptqFactor returns U, the upper Cholesky factor of (H + λI)⁻¹ (Uᵀ U =
// H⁻¹), with GPTQ's dampening λ = 1% of the mean diagonal.
func gptqFactor(h *Gram) ([]float64, error) {
	n := h.N
	a := slices.Clone(h.H)
	var mean float64
	for j := 0; j < n; j++ {
		mean += a[j*n+j]
	}
	mean /= float64(n)
	if mean <= 0 {
		mean = 1
	}
	for j := 0; j < n; j++ {
		if a[j*n+j] <= 0 { // a dead column: decouple it
			for k := 0; k < n; k++ {
				a[j*n+k], a[k*n+j] = 0, 0
			}
			a[j*n+j] = mean
		}
		a[j*n+j] += 0.01 * mean
	}
	l, err := qCholesky(a, n)
	if err != nil {
		return nil, err
	}
	// inverse of L (lower triangular), then H⁻¹ = L⁻ᵀ L⁻¹
	li := make([]float64, n*n)
	for j := 0; j < n; j++ {
		li[j*n+j] = 1 / l[j*n+j]
		for i := j + 1; i < n; i++ {
			var s float64
			for k := j; k < i; k++ {
				s += l[i*n+k] * li[k*n+j]
			}
			li[i*n+j] = -s / l[i*n+i]
		}
	}
	inv := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			var s float64
			for k := i; k < n; k++ {
				s += li[k*n+i] * li[k*n+j]
			}
			inv[i*n+j], inv[j*n+i] = s, s
		}
	}
	// U = Lᵀ for the Cholesky factor L of H⁻¹ (L Lᵀ = H⁻¹, so Uᵀ U = H⁻¹)
	lf, err := qCholesky(inv, n)
	if err != nil {
		return nil, err
	}
	u := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			u[j*n+i] = lf[i*n+j]
		}
	}
	return u, nil
}

// qCholesky returns the lower factor L of a symmetric positive definite a.
func qCholesky(a []float64, n int) ([]float64, error) {
	l := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			s := a[i*n+j]
			for k := 0; k < j; k++ {
				s -= l[i*n+k] * l[j*n+k]
			}
			if i == j {
				if s <= 0 {
					return nil, fmt.Errorf("%w: calibration Gram matrix is not positive definite", ErrQuant)
				}
				l[i*n+i] = math.Sqrt(s)
			} else {
				l[i*n+j] = s / l[j*n+j]
			}
		}
	}
	return l, nil
}

// learnCodebook fits a sorted int8 codebook to the matrix by Lloyd
// iterations in the scaled domain: assign every group with the scale
// search, move each level to the importance-weighted mean of the values
// assigned to it, rescale to the int8 range.
func learnCodebook(w []float64, rows, cols, gs int, d []float64, cb []int8) []int8 {
	cb = slices.Clone(cb)
	n := len(cb)
	idx := make([]int, cols)
	for iter := 0; iter < 10; iter++ {
		sc := &scaler{g: newGrid(cb), enc: ScaleF32}
		num, den := make([]float64, n), make([]float64, n)
		for i := 0; i < rows; i++ {
			row := w[i*cols : (i+1)*cols]
			for j0 := 0; j0 < cols; j0 += gs {
				j1 := min(j0+gs, cols)
				s, _ := sc.choose(row[j0:j1], d[j0:j1], idx[j0:j1])
				if s == 0 {
					continue
				}
				s64 := float64(s)
				for j := j0; j < j1; j++ {
					wt := d[j] * s64 * s64
					num[idx[j]] += wt * row[j] / s64
					den[idx[j]] += wt
				}
			}
		}
		lv := make([]float64, n)
		for k := range lv {
			lv[k] = sc.g.cb[k]
			if den[k] > 0 {
				lv[k] = num[k] / den[k]
			}
		}
		slices.Sort(lv)
		m := max(-lv[0], lv[n-1])
		next := make([]int8, n)
		for k := range next {
			next[k] = int8(math.Round(lv[k] / m * 127))
		}
		// keep levels distinct and inside int8: level k in [-128+k, 127-(n-1-k)]
		for k := range next {
			lo, hi := -128+k, 127-(n-1-k)
			v := int(next[k])
			if k > 0 {
				v = max(v, int(next[k-1])+1)
			}
			next[k] = int8(min(max(v, lo), hi))
		}
		if slices.Equal(next, cb) {
			break
		}
		cb = next
	}
	return cb
}

// WeightedError is Σ over rows of (w - ŵ) H (w - ŵ)ᵀ, the expected squared
// output error of the matrix on the calibration activations (H nil: plain
// squared error).
func WeightedError(w []float32, q *models.PackedMat, h *Gram) float64 {
	deq := dequantPacked(q)
	cols := q.Cols
	e := make([]float64, cols)
	var tot float64
	for i := 0; i < q.Rows; i++ {
		for j := range e {
			e[j] = float64(w[i*cols+j]) - deq[i*cols+j]
		}
		if h == nil {
			for _, v := range e {
				tot += v * v
			}
			continue
		}
		for j, ej := range e {
			if ej == 0 {
				continue
			}
			var s float64
			hr := h.H[j*cols : (j+1)*cols]
			for k, ek := range e {
				s += hr[k] * ek
			}
			tot += ej * s
		}
	}
	return tot
}
