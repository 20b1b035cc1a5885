//go:build amd64 && !purego

package core

// dots4I8AVX2 is in bert_amd64.s: four activation vectors against one
// weight row, group sums interleaved by vector (isums[4a+t]).
//
//go:noescape
func dots4I8AVX2(w, x *int8, xstride, n, ga int, isums *int32)

// batchQ8 reports whether the four-vector kernel runs this product.
func batchQ8(n, ga int) bool {
	return hasAVX2 && ga > 0 && ga%16 == 0 && n%ga == 0 && n/ga <= maxBatchGroups
}

func dots4I8(w, x []int8, xstride, n, ga int, isums []int32) {
	_ = w[n-1]
	_ = x[3*xstride+n-1]
	_ = isums[4*(n/ga)-1]
	dots4I8AVX2(&w[0], &x[0], xstride, n, ga, &isums[0])
}
