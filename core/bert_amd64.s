//go:build amd64 && !purego

#include "textflag.h"

// func dots4I8AVX2(w, x *int8, xstride, n, ga int, isums *int32)
// For one int8 row w and four int8 vectors x, x+xstride, x+2·xstride,
// x+3·xstride (n values each; ga divides n and is a multiple of 16), writes
// isums[4a+t] = Σ w[j]·x_t[j] over activation group a. Each step widens 16
// weights once (VPMOVSXBW) and multiplies them with the four vectors
// (VPMADDWD, int16 pairs into int32 lanes); a group's four accumulators are
// reduced together by three VPHADDDs and one 128-bit add, which store its
// four sums at once. Integer sums are exact, so the order does not matter.
TEXT ·dots4I8AVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ xstride+16(FP), BX
	MOVQ n+24(FP), R8
	MOVQ ga+32(FP), R9
	MOVQ isums+40(FP), R10
	LEAQ (DI)(BX*1), R11     // x1
	LEAQ (R11)(BX*1), R12    // x2
	LEAQ (R12)(BX*1), R13    // x3
	XORQ CX, CX              // j
group:
	CMPQ CX, R8
	JGE  done
	MOVQ CX, DX
	ADDQ R9, DX              // end of the group
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
step:
	VPMOVSXBW (SI)(CX*1), Y4
	VPMOVSXBW (DI)(CX*1), Y5
	VPMADDWD  Y4, Y5, Y5
	VPADDD    Y5, Y0, Y0
	VPMOVSXBW (R11)(CX*1), Y6
	VPMADDWD  Y4, Y6, Y6
	VPADDD    Y6, Y1, Y1
	VPMOVSXBW (R12)(CX*1), Y7
	VPMADDWD  Y4, Y7, Y7
	VPADDD    Y7, Y2, Y2
	VPMOVSXBW (R13)(CX*1), Y8
	VPMADDWD  Y4, Y8, Y8
	VPADDD    Y8, Y3, Y3
	ADDQ $16, CX
	CMPQ CX, DX
	JL   step
	VPHADDD Y1, Y0, Y0       // per 128-bit lane: x0 pair sums, x1 pair sums
	VPHADDD Y3, Y2, Y2
	VPHADDD Y2, Y0, Y0       // per lane: the four vectors' partial sums
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VMOVDQU X0, (R10)
	ADDQ $16, R10
	JMP  group
done:
	VZEROUPPER
	RET
