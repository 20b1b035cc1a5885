package core

import "math"

// expf returns e^x rounded to float32, computed in float64 with a fixed
// sequence of IEEE operations, so that native, wasm and the SIMD kernels all
// get the same bits (wasm/simd/kernels.wat repeats it for two lanes at a time). (math.Exp has an assembly version on amd64 and a Go one
// on wasm, and is ~150 ns a call under wazero; this is a fraction of that.)
//
// e^x = 2^k · e^r with k = round(x/ln2) and |r| <= ln2/2; e^r by its Taylor
// polynomial to degree 11 (truncation error < 7e-15 relative), so the float32
// result is the correctly rounded one except when e^x lies within ~1e-14 of a
// rounding boundary (1 of 300,000,000 consecutive float32 inputs in
// [-104, 88) differs from float32(math.Exp)); libm expf errs like that too.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 100:
		return float32(math.Inf(1))
	case x < -120:
		return 0
	}
	xd := float64(x)
	k := math.RoundToEven(xd * log2e)
	// float64(a*b) forbids FMA fusion, which would change the bits
	r := (xd - float64(k*ln2Hi)) - float64(k*ln2Lo)
	p := 1.0 / 39916800
	p = float64(p*r) + 1.0/3628800
	p = float64(p*r) + 1.0/362880
	p = float64(p*r) + 1.0/40320
	p = float64(p*r) + 1.0/5040
	p = float64(p*r) + 1.0/720
	p = float64(p*r) + 1.0/120
	p = float64(p*r) + 1.0/24
	p = float64(p*r) + 1.0/6
	p = float64(p*r) + 0.5
	p = float64(p*r) + 1
	p = float64(p*r) + 1
	return float32(p * math.Float64frombits(uint64(int64(k)+1023)<<52))
}

const (
	log2e = 1.4426950408889634
	ln2Hi = 6.93147180369123816490e-01 // ln2 with its low 32 bits zero: k*ln2Hi is exact
	ln2Lo = 1.90821492927058770002e-10
)
