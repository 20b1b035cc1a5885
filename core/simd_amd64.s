//go:build amd64 && !purego

#include "textflag.h"

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET

// func dotsI8AVX2(w, x *int8, n, ga int, isums *int32)
// For each activation group: 16 values at a time are sign-extended to int16
// (VPMOVSXBW) and multiplied pairwise into int32 (VPMADDWD); a scalar loop
// takes the group's last n%16 values.
TEXT ·dotsI8AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), R8
	MOVQ ga+24(FP), R9
	MOVQ isums+32(FP), R10
	XORQ R11, R11            // j0: start of the group
group:
	CMPQ R11, R8
	JGE  done
	MOVQ R11, R12
	ADDQ R9, R12             // j1 = min(j0+ga, n)
	CMPQ R12, R8
	JLE  ok1
	MOVQ R8, R12
ok1:
	VPXOR Y0, Y0, Y0         // accumulator
	MOVQ R11, R13            // j
loop16:
	MOVQ R13, AX
	ADDQ $16, AX
	CMPQ AX, R12
	JG   tail
	VPMOVSXBW (SI)(R13*1), Y1
	VPMOVSXBW (DI)(R13*1), Y2
	VPMADDWD Y1, Y2, Y1
	VPADDD Y1, Y0, Y0
	MOVQ AX, R13
	JMP  loop16
tail:
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, BX             // group sum so far
tloop:
	CMPQ R13, R12
	JGE  store
	MOVBQSX (SI)(R13*1), AX
	MOVBQSX (DI)(R13*1), DX
	IMULL DX, AX
	ADDL AX, BX
	INCQ R13
	JMP  tloop
store:
	MOVL BX, (R10)
	ADDQ $4, R10
	MOVQ R12, R11
	JMP  group
done:
	VZEROUPPER
	RET

// func dotsQ4AVX2(w *byte, cb *[16]int8, x *int8, n, ga int, isums *int32)
// 16 values at a time from an even position: 8 packed bytes are split into
// low and high nibbles, interleaved (value j's index in byte j/2, low nibble
// first), looked up in the codebook with VPSHUFB, then as dotsI8AVX2.
TEXT ·dotsQ4AVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ cb+8(FP), CX
	MOVQ x+16(FP), DI
	MOVQ n+24(FP), R8
	MOVQ ga+32(FP), R9
	MOVQ isums+40(FP), R10
	VMOVDQU (CX), X5         // codebook
	MOVQ $0x0f0f0f0f0f0f0f0f, AX
	MOVQ AX, X6
	VPBROADCASTQ X6, X6      // nibble mask
	XORQ R11, R11
qgroup:
	CMPQ R11, R8
	JGE  qdone
	MOVQ R11, R12
	ADDQ R9, R12
	CMPQ R12, R8
	JLE  qok1
	MOVQ R8, R12
qok1:
	VPXOR Y0, Y0, Y0
	XORL BX, BX
	MOVQ R11, R13
	TESTQ $1, R13            // odd start: one value alone
	JZ   qloop16
	CMPQ R13, R12
	JGE  qloop16
	MOVQ R13, AX
	SHRQ $1, AX
	MOVBQZX (SI)(AX*1), AX
	SHRQ $4, AX
	MOVBQSX (CX)(AX*1), AX
	MOVBQSX (DI)(R13*1), DX
	IMULL DX, AX
	ADDL AX, BX
	INCQ R13
qloop16:
	MOVQ R13, AX
	ADDQ $16, AX
	CMPQ AX, R12
	JG   qtail
	MOVQ R13, DX
	SHRQ $1, DX
	VMOVQ (SI)(DX*1), X1     // 8 bytes = 16 indices
	VPSRLW $4, X1, X2
	VPAND X6, X1, X1         // low nibbles
	VPAND X6, X2, X2         // high nibbles
	VPUNPCKLBW X2, X1, X1    // l0 h0 l1 h1 ...
	VPSHUFB X1, X5, X1       // codebook values
	VPMOVSXBW X1, Y1
	VPMOVSXBW (DI)(R13*1), Y2
	VPMADDWD Y1, Y2, Y1
	VPADDD Y1, Y0, Y0
	MOVQ AX, R13
	JMP  qloop16
qtail:
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, AX
	ADDL AX, BX
qtloop:
	CMPQ R13, R12
	JGE  qstore
	MOVQ R13, AX
	SHRQ $1, AX
	MOVBQZX (SI)(AX*1), AX
	TESTQ $1, R13
	JZ   qlow
	SHRQ $4, AX
qlow:
	ANDQ $15, AX
	MOVBQSX (CX)(AX*1), AX
	MOVBQSX (DI)(R13*1), DX
	IMULL DX, AX
	ADDL AX, BX
	INCQ R13
	JMP  qtloop
qstore:
	MOVL BX, (R10)
	ADDQ $4, R10
	MOVQ R12, R11
	JMP  qgroup
qdone:
	VZEROUPPER
	RET
