//go:build amd64 && !purego

package core

// On amd64 with AVX2 the integer dot products of the quantized kernels run in
// assembly (simd_amd64.s); the float work around them stays in Go, in the
// specification's order, so results are bit-identical to the plain kernels
// (integer sums are exact). Measured on this VM class (BenchmarkMatVecQ8,
// 768x288, groups of 32, one run on a loaded 2-core VM): int8 0.40 -> 2.70
// GMAC/s (6.8x), 4-bit codebook 0.29 -> 2.10 GMAC/s (7.2x). Build with
// -tags purego for the plain kernels.

// cpuid and xgetbv are in simd_amd64.s.
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv() (eax, edx uint32)

// dotsI8AVX2 writes isums[a] = Σ w[j]·x[j] over activation group a of a row
// of n values (groups of ga, the last may be shorter).
//
//go:noescape
func dotsI8AVX2(w, x *int8, n, ga int, isums *int32)

// dotsQ4AVX2 is dotsI8AVX2 for a packed 4-bit row and its codebook.
//
//go:noescape
func dotsQ4AVX2(w *byte, cb *[16]int8, x *int8, n, ga int, isums *int32)

var hasAVX2 = detectAVX2()

// SIMD reports whether this build uses the WebAssembly SIMD kernel module.
const SIMD = false

// Kernels names the kernel set in use: "avx2" or "go".
func Kernels() string {
	if hasAVX2 {
		return "avx2"
	}
	return "go"
}

func detectAVX2() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, avx = 1 << 27, 1 << 28
	if ecx1&osxsave == 0 || ecx1&avx == 0 {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 { // the OS saves XMM and YMM state
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}

// maxActGroups bounds the per-row group sums kept on the stack; rows with
// more activation groups take the plain-Go kernel.
const maxActGroups = 512

func matVecQ8Fast(out []float32, wq []int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int) {
	nga := (n + ga - 1) / ga
	if !hasAVX2 || nga > maxActGroups || r1 <= r0 {
		matVecQ8(out, wq, ws, xq, xs, n, gw, ga, r0, r1)
		return
	}
	_ = wq[r1*n-1]
	_ = xq[n-1]
	var buf [maxActGroups]int32
	isums := buf[:nga]
	for i := r0; i < r1; i++ {
		dotsI8AVX2(&wq[i*n], &xq[0], n, ga, &isums[0])
		out[i] = combineGroups(isums, xs, ws, i, n, gw, ga)
	}
}

func matVecQ4Fast(out []float32, wp []byte, cb *[16]int8, ws []float32, xq []int8, xs []float32, n, gw, ga, r0, r1 int) {
	nga := (n + ga - 1) / ga
	if !hasAVX2 || nga > maxActGroups || r1 <= r0 {
		matVecQ4(out, wp, cb, ws, xq, xs, n, gw, ga, r0, r1)
		return
	}
	ps := (n + 1) / 2
	_ = wp[r1*ps-1]
	_ = xq[n-1]
	var buf [maxActGroups]int32
	isums := buf[:nga]
	for i := r0; i < r1; i++ {
		dotsQ4AVX2(&wp[i*ps], cb, &xq[0], n, ga, &isums[0])
		out[i] = combineGroups(isums, xs, ws, i, n, gw, ga)
	}
}

// combineGroups applies the scales to row i's activation-group sums in the
// order the specification (matVecQ8Ref) adds them.
// The activation group of a0 = j0 + t*ga is j0/ga + t; j0/ga is carried
// from group to group as a quotient and remainder (no division per group:
// integer division was a third of the step on 288-wide rows).
func combineGroups(isums []int32, xs, ws []float32, i, n, gw, ga int) float32 {
	gpr := (n + gw - 1) / gw
	rs := ws[i*gpr : i*gpr+gpr]
	dq, dr := gw/ga, gw%ga
	var val float32
	q, r := 0, 0 // j0 = q*ga + r
	for g, j0 := 0, 0; g < len(rs); g, j0 = g+1, j0+gw {
		j1 := min(j0+gw, n)
		var acc float32
		a := q
		for a0 := j0; a0 < j1; a0 += ga {
			acc += float32(isums[a]) * xs[a]
			a++
		}
		val += acc * rs[g]
		q, r = q+dq, r+dr
		if r >= ga {
			q, r = q+1, r-ga
		}
	}
	return val
}
