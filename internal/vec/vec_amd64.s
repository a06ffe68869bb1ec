#include "textflag.h"

// AVX2 kernels for vec.go. Each lane repeats the pure-Go loop's operations
// on one element in the same order, with the same operand order (the first
// source of an add is the accumulator, as the compiled scalar code has it).
// No FMA. Y14 holds the absolute-value mask 0x7fff…f.

#define ABSMASK VPCMPEQQ Y14, Y14, Y14; VPSRLQ $1, Y14, Y14

// HSUM stores lanes l0..l3 of y (x its low half) as (l0+l1)+(l2+l3), the
// pure-Go reduction's order. Uses X13 and X15.
#define HSUM(y, x, dst) \
	VEXTRACTF128 $1, y, X13; \
	VHADDPD      X13, x, X15; \
	VHADDPD      X15, X15, X15; \
	VMOVSD       X15, dst

// func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv(index uint32) (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-16
	MOVL index+0(FP), CX
	XGETBV
	MOVL AX, eax+8(FP)
	MOVL DX, edx+12(FP)
	RET

// func axpyStrideAVX2(c *float64, cstride uintptr, v unsafe.Pointer, vstride uintptr, nk int, o, absV *float64, n int)
// Key i's weight is the float64 at c + i·cstride, its row the []float32
// header at v + i·vstride. Elements j in blocks of 8 (two vectors, for two
// independent add chains), then of 4, then one at a time; keys inner, in
// order. nk ≥ 1, n ≥ 1.
TEXT ·axpyStrideAVX2(SB), NOSPLIT, $0-64
	MOVQ o+40(FP), DI
	MOVQ absV+48(FP), BX
	MOVQ n+56(FP), DX
	MOVQ cstride+8(FP), R12
	MOVQ vstride+24(FP), R13
	ABSMASK
	XORQ CX, CX

axpyN8:
	LEAQ 8(CX), AX
	CMPQ AX, DX
	JGT  axpyN4
	VMOVUPD (DI)(CX*8), Y0
	VMOVUPD 32(DI)(CX*8), Y1
	VMOVUPD (BX)(CX*8), Y2
	VMOVUPD 32(BX)(CX*8), Y3
	MOVQ c+0(FP), R8
	MOVQ v+16(FP), R9
	MOVQ nk+32(FP), R10

axpyN8k:
	MOVQ         (R9), R11
	VBROADCASTSD (R8), Y4
	VCVTPS2PD    (R11)(CX*4), Y5
	VCVTPS2PD    16(R11)(CX*4), Y6
	VMULPD       Y5, Y4, Y5
	VMULPD       Y6, Y4, Y6
	VADDPD       Y5, Y0, Y0
	VADDPD       Y6, Y1, Y1
	VANDPD       Y14, Y5, Y5
	VANDPD       Y14, Y6, Y6
	VADDPD       Y5, Y2, Y2
	VADDPD       Y6, Y3, Y3
	ADDQ         R12, R8
	ADDQ         R13, R9
	DECQ         R10
	JNZ          axpyN8k

	VMOVUPD Y0, (DI)(CX*8)
	VMOVUPD Y1, 32(DI)(CX*8)
	VMOVUPD Y2, (BX)(CX*8)
	VMOVUPD Y3, 32(BX)(CX*8)
	MOVQ    AX, CX
	JMP     axpyN8

axpyN4:
	LEAQ 4(CX), AX
	CMPQ AX, DX
	JGT  axpyN1
	VMOVUPD (DI)(CX*8), Y0
	VMOVUPD (BX)(CX*8), Y2
	MOVQ c+0(FP), R8
	MOVQ v+16(FP), R9
	MOVQ nk+32(FP), R10

axpyN4k:
	MOVQ         (R9), R11
	VBROADCASTSD (R8), Y4
	VCVTPS2PD    (R11)(CX*4), Y5
	VMULPD       Y5, Y4, Y5
	VADDPD       Y5, Y0, Y0
	VANDPD       Y14, Y5, Y5
	VADDPD       Y5, Y2, Y2
	ADDQ         R12, R8
	ADDQ         R13, R9
	DECQ         R10
	JNZ          axpyN4k

	VMOVUPD Y0, (DI)(CX*8)
	VMOVUPD Y2, (BX)(CX*8)
	ADDQ    $4, CX

axpyN1: // the last n mod 4 elements one at a time, keys inner (scalar ops)
	CMPQ CX, DX
	JGE  axpyNdone
	VMOVSD (DI)(CX*8), X0
	VMOVSD (BX)(CX*8), X2
	MOVQ c+0(FP), R8
	MOVQ v+16(FP), R9
	MOVQ nk+32(FP), R10

axpyN1k:
	MOVQ      (R9), R11
	VMOVSD    (R8), X4
	VCVTSS2SD (R11)(CX*4), X5, X5
	VMULSD    X5, X4, X5
	VADDSD    X5, X0, X0
	VANDPD    X14, X5, X5
	VADDSD    X5, X2, X2
	ADDQ      R12, R8
	ADDQ      R13, R9
	DECQ      R10
	JNZ       axpyN1k

	VMOVSD X0, (DI)(CX*8)
	VMOVSD X2, (BX)(CX*8)
	INCQ   CX
	JMP    axpyN1

axpyNdone:
	VZEROUPPER
	RET

// DEVW adds c_w·e to two blocks' accumulators: accA += Y12·eA, accB += Y12·eB.
#define DEVW(off, accA, accB) \
	VBROADCASTSD off(R8), Y12; \
	VMULPD       Y10, Y12, Y13; \
	VMULPD       Y11, Y12, Y15; \
	VADDPD       Y13, accA, accA; \
	VADDPD       Y15, accB, accB

// func devNAVX2(c *[4]float64, v *[]float32, nk int, o, d1, da, dx, dm *float64, n int)
// Elements j in blocks of 8 (two vectors), then of 4; keys inner, in order.
// The accumulators of block A are Y0-Y3, of block B Y4-Y7. nk ≥ 1.
TEXT ·devNAVX2(SB), NOSPLIT, $0-72
	MOVQ o+24(FP), DI
	MOVQ d1+32(FP), R12
	MOVQ da+40(FP), R13
	MOVQ dx+48(FP), SI
	MOVQ dm+56(FP), BX
	MOVQ n+64(FP), DX
	ABSMASK
	XORQ CX, CX

devN8:
	LEAQ 8(CX), AX
	CMPQ AX, DX
	JGT  devN4
	VMOVUPD (DI)(CX*8), Y8
	VMOVUPD 32(DI)(CX*8), Y9
	VMOVUPD (R12)(CX*8), Y0
	VMOVUPD 32(R12)(CX*8), Y4
	VMOVUPD (R13)(CX*8), Y1
	VMOVUPD 32(R13)(CX*8), Y5
	VMOVUPD (SI)(CX*8), Y2
	VMOVUPD 32(SI)(CX*8), Y6
	VMOVUPD (BX)(CX*8), Y3
	VMOVUPD 32(BX)(CX*8), Y7
	MOVQ c+0(FP), R8
	MOVQ v+8(FP), R9
	MOVQ nk+16(FP), R10

devN8k:
	MOVQ      (R9), R11
	VCVTPS2PD (R11)(CX*4), Y10
	VCVTPS2PD 16(R11)(CX*4), Y11
	VSUBPD    Y8, Y10, Y10
	VSUBPD    Y9, Y11, Y11
	VANDPD    Y14, Y10, Y10
	VANDPD    Y14, Y11, Y11
	DEVW(0, Y0, Y4)
	DEVW(8, Y1, Y5)
	DEVW(16, Y2, Y6)
	DEVW(24, Y3, Y7)
	ADDQ      $32, R8
	ADDQ      $24, R9
	DECQ      R10
	JNZ       devN8k

	VMOVUPD Y0, (R12)(CX*8)
	VMOVUPD Y4, 32(R12)(CX*8)
	VMOVUPD Y1, (R13)(CX*8)
	VMOVUPD Y5, 32(R13)(CX*8)
	VMOVUPD Y2, (SI)(CX*8)
	VMOVUPD Y6, 32(SI)(CX*8)
	VMOVUPD Y3, (BX)(CX*8)
	VMOVUPD Y7, 32(BX)(CX*8)
	MOVQ    AX, CX
	JMP     devN8

devN4:
	CMPQ CX, DX
	JGE  devNdone
	VMOVUPD (DI)(CX*8), Y8
	VMOVUPD (R12)(CX*8), Y0
	VMOVUPD (R13)(CX*8), Y1
	VMOVUPD (SI)(CX*8), Y2
	VMOVUPD (BX)(CX*8), Y3
	MOVQ c+0(FP), R8
	MOVQ v+8(FP), R9
	MOVQ nk+16(FP), R10

devN4k:
	MOVQ         (R9), R11
	VCVTPS2PD    (R11)(CX*4), Y10
	VSUBPD       Y8, Y10, Y10
	VANDPD       Y14, Y10, Y10
	VBROADCASTSD 0(R8), Y12
	VMULPD       Y10, Y12, Y13
	VADDPD       Y13, Y0, Y0
	VBROADCASTSD 8(R8), Y12
	VMULPD       Y10, Y12, Y13
	VADDPD       Y13, Y1, Y1
	VBROADCASTSD 16(R8), Y12
	VMULPD       Y10, Y12, Y13
	VADDPD       Y13, Y2, Y2
	VBROADCASTSD 24(R8), Y12
	VMULPD       Y10, Y12, Y13
	VADDPD       Y13, Y3, Y3
	ADDQ         $32, R8
	ADDQ         $24, R9
	DECQ         R10
	JNZ          devN4k

	VMOVUPD Y0, (R12)(CX*8)
	VMOVUPD Y1, (R13)(CX*8)
	VMOVUPD Y2, (SI)(CX*8)
	VMOVUPD Y3, (BX)(CX*8)

devNdone:
	VZEROUPPER
	RET

// EXPBODY computes num.Exp's regular path on the four lanes of Y0 into Y0
// (fdlibm's reduction, polynomial and scaling, each operation as the Go
// code orders it; |x| < 2^-28 gives 1 + x as the Go code does). Lanes with
// |x| ≥ 700 or NaN clear their bit of Y15: the caller recomputes them.
// R8 points at expConsts. Clobbers Y1-Y12.
#define EXPBODY \
	VANDPD      416(R8), Y0, Y1; \
	VCMPPD      $0x11, 448(R8), Y1, Y2; \
	VANDPD      Y2, Y15, Y15; \
	VMULPD      0(R8), Y0, Y2; \
	VMOVUPD     32(R8), Y3; \
	VBLENDVPD   Y0, 64(R8), Y3, Y3; \
	VADDPD      Y3, Y2, Y2; \
	VCVTTPD2DQY Y2, X4; \
	VCVTDQ2PD   X4, Y5; \
	VMULPD      96(R8), Y5, Y6; \
	VSUBPD      Y6, Y0, Y6; \
	VMULPD      128(R8), Y5, Y7; \
	VSUBPD      Y7, Y6, Y8; \
	VMULPD      Y8, Y8, Y9; \
	VMULPD      288(R8), Y9, Y10; \
	VADDPD      256(R8), Y10, Y10; \
	VMULPD      Y10, Y9, Y10; \
	VADDPD      224(R8), Y10, Y10; \
	VMULPD      Y10, Y9, Y10; \
	VADDPD      192(R8), Y10, Y10; \
	VMULPD      Y10, Y9, Y10; \
	VADDPD      160(R8), Y10, Y10; \
	VMULPD      Y10, Y9, Y10; \
	VSUBPD      Y10, Y8, Y10; \
	VMULPD      Y10, Y8, Y11; \
	VMOVUPD     352(R8), Y12; \
	VSUBPD      Y10, Y12, Y12; \
	VDIVPD      Y12, Y11, Y11; \
	VSUBPD      Y11, Y7, Y11; \
	VSUBPD      Y6, Y11, Y11; \
	VMOVUPD     320(R8), Y12; \
	VSUBPD      Y11, Y12, Y11; \
	VPMOVSXDQ   X4, Y5; \
	VPADDQ      480(R8), Y5, Y5; \
	VPSLLQ      $52, Y5, Y5; \
	VMULPD      Y5, Y11, Y11; \
	VADDPD      320(R8), Y0, Y12; \
	VCMPPD      $0x11, 384(R8), Y1, Y2; \
	VBLENDVPD   Y2, Y12, Y11, Y0

// func expAVX2(dst, x *float64, n int, c *[16][4]float64) (wide bool)
// dst[i] = num.Exp(x[i]) for i < n (a positive multiple of 4) where
// |x[i]| < 700; wide reports a lane outside (or NaN).
TEXT ·expAVX2(SB), NOSPLIT, $0-33
	MOVQ     dst+0(FP), DI
	MOVQ     x+8(FP), SI
	MOVQ     n+16(FP), DX
	MOVQ     c+24(FP), R8
	VPCMPEQQ Y15, Y15, Y15
	XORQ     CX, CX

exp64loop:
	VMOVUPD (SI)(CX*8), Y0
	EXPBODY
	VMOVUPD Y0, (DI)(CX*8)
	ADDQ    $4, CX
	CMPQ    CX, DX
	JLT     exp64loop

	VMOVMSKPD Y15, AX
	CMPL      AX, $15
	SETNE     wide+32(FP)
	VZEROUPPER
	RET

// func exp32AVX2(dst, x *float32, n int, c *[16][4]float64) (wide bool)
// dst[i] = num.Exp32(x[i]) = float32(num.Exp(float64(x[i]))), likewise.
TEXT ·exp32AVX2(SB), NOSPLIT, $0-33
	MOVQ     dst+0(FP), DI
	MOVQ     x+8(FP), SI
	MOVQ     n+16(FP), DX
	MOVQ     c+24(FP), R8
	VPCMPEQQ Y15, Y15, Y15
	XORQ     CX, CX

exp32loop:
	VCVTPS2PD  (SI)(CX*4), Y0
	EXPBODY
	VCVTPD2PSY Y0, X0
	VMOVUPS    X0, (DI)(CX*4)
	ADDQ       $4, CX
	CMPQ       CX, DX
	JLT        exp32loop

	VMOVMSKPD Y15, AX
	CMPL      AX, $15
	SETNE     wide+32(FP)
	VZEROUPPER
	RET

// A32 adds p·v to the accumulators acc for one key: Y15 = p (broadcast),
// v the row's block at off.
#define A32(off, acc) \
	VMULPS off(R11)(CX*4), Y15, Y14; \
	VADDPS Y14, acc, acc

// func axpyRows32AVX2(p *float32, rows unsafe.Pointer, stride uintptr, nk int, o *float32, n int)
// o[j] = o[j] + p_c·v_c[j] in float32, keys c in order, for j < n (a
// positive multiple of 8): blocks of 32 elements (four independent add
// chains), then of 8. rows points at key 0's row (a slice header), key
// c's is stride·c bytes further. nk ≥ 1.
TEXT ·axpyRows32AVX2(SB), NOSPLIT, $0-48
	MOVQ o+32(FP), DI
	MOVQ n+40(FP), DX
	XORQ CX, CX

a32blk4:
	LEAQ 32(CX), AX
	CMPQ AX, DX
	JGT  a32blk1
	VMOVUPS (DI)(CX*4), Y0
	VMOVUPS 32(DI)(CX*4), Y1
	VMOVUPS 64(DI)(CX*4), Y2
	VMOVUPS 96(DI)(CX*4), Y3
	MOVQ    p+0(FP), R8
	MOVQ    rows+8(FP), R9
	MOVQ    stride+16(FP), R12
	MOVQ    nk+24(FP), R10

a32k4:
	MOVQ         (R9), R11
	VBROADCASTSS (R8), Y15
	A32(0, Y0)
	A32(32, Y1)
	A32(64, Y2)
	A32(96, Y3)
	ADDQ         $4, R8
	ADDQ         R12, R9
	DECQ         R10
	JNZ          a32k4

	VMOVUPS Y0, (DI)(CX*4)
	VMOVUPS Y1, 32(DI)(CX*4)
	VMOVUPS Y2, 64(DI)(CX*4)
	VMOVUPS Y3, 96(DI)(CX*4)
	MOVQ    AX, CX
	JMP     a32blk4

a32blk1:
	CMPQ CX, DX
	JGE  a32done
	VMOVUPS (DI)(CX*4), Y0
	MOVQ    p+0(FP), R8
	MOVQ    rows+8(FP), R9
	MOVQ    stride+16(FP), R12
	MOVQ    nk+24(FP), R10

a32k1:
	MOVQ         (R9), R11
	VBROADCASTSS (R8), Y15
	A32(0, Y0)
	ADDQ         $4, R8
	ADDQ         R12, R9
	DECQ         R10
	JNZ          a32k1

	VMOVUPS Y0, (DI)(CX*4)
	ADDQ    $8, CX
	JMP     a32blk1

a32done:
	VZEROUPPER
	RET

// func maxAbsBits32AVX2(p *float32, n int) uint32
// max over i < n (n a multiple of 8) of bits(p[i]) & 0x7fffffff, unsigned.
TEXT ·maxAbsBits32AVX2(SB), NOSPLIT, $0-20
	MOVQ         p+0(FP), SI
	MOVQ         n+8(FP), CX
	MOVL         $0x7fffffff, AX
	VMOVD        AX, X2
	VPBROADCASTD X2, Y2
	VPXOR        Y0, Y0, Y0
	VPXOR        Y1, Y1, Y1

mab16:
	CMPQ    CX, $16
	JLT     mab8
	VPAND   (SI), Y2, Y3
	VPMAXUD Y3, Y0, Y0
	VPAND   32(SI), Y2, Y4
	VPMAXUD Y4, Y1, Y1
	ADDQ    $64, SI
	SUBQ    $16, CX
	JMP     mab16

mab8:
	CMPQ    CX, $8
	JLT     mabdone
	VPAND   (SI), Y2, Y3
	VPMAXUD Y3, Y0, Y0

mabdone:
	VPMAXUD      Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMAXUD      X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPMAXUD      X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPMAXUD      X1, X0, X0
	VMOVD        X0, AX
	MOVL         AX, ret+16(FP)
	VZEROUPPER
	RET

// DOT4ACC adds q·k_i (Y8 · Y(9+i)) to key i's dot sums Y(i) and
// |q·k_i| to its abs sums Y(4+i), for keys i = 0..3. Clobbers Y9-Y12.
#define DOT4ACC \
	VMULPD Y8, Y9, Y9; \
	VMULPD Y8, Y10, Y10; \
	VMULPD Y8, Y11, Y11; \
	VMULPD Y8, Y12, Y12; \
	VADDPD Y9, Y0, Y0; \
	VADDPD Y10, Y1, Y1; \
	VADDPD Y11, Y2, Y2; \
	VADDPD Y12, Y3, Y3; \
	VANDPD Y14, Y9, Y9; \
	VANDPD Y14, Y10, Y10; \
	VANDPD Y14, Y11, Y11; \
	VANDPD Y14, Y12, Y12; \
	VADDPD Y9, Y4, Y4; \
	VADDPD Y10, Y5, Y5; \
	VADDPD Y11, Y6, Y6; \
	VADDPD Y12, Y7, Y7

// func dotRowsAVX2(q *float64, n int, rows unsafe.Pointer, stride uintptr, nk int, dot, abs *float64)
// Key c's row is the []float32 header at rows + c·stride. Four keys at a
// time (lanes l = j mod 4, as dot2Go's), then one at a time; each key's
// lanes reduce as (l0+l1)+(l2+l3) into dot[c] and abs[c]. Elements past
// n&^3 add into lane 0 in order, as dot2Go's tail does: the vector ops on
// (x_j, 0, 0, 0) leave the other lanes' bits alone, as their sums start at
// +0 and so are never −0. n ≥ 1, nk ≥ 0.
TEXT ·dotRowsAVX2(SB), NOSPLIT, $0-56
	MOVQ q+0(FP), SI
	MOVQ n+8(FP), DX
	MOVQ rows+16(FP), R12
	MOVQ stride+24(FP), R13
	MOVQ nk+32(FP), R14
	MOVQ dot+40(FP), DI
	MOVQ abs+48(FP), BX
	MOVQ DX, R15
	ANDQ $-4, R15 // n&^3: the lane loops' end
	ABSMASK
	XORQ AX, AX

rows4:
	LEAQ 4(AX), CX
	CMPQ CX, R14
	JGT  rows1
	MOVQ (R12), R8
	ADDQ R13, R12
	MOVQ (R12), R9
	ADDQ R13, R12
	MOVQ (R12), R10
	ADDQ R13, R12
	MOVQ (R12), R11
	ADDQ R13, R12
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	XORQ CX, CX
	CMPQ CX, R15
	JGE  rows4t

rows4j:
	VMOVUPD   (SI)(CX*8), Y8
	VCVTPS2PD (R8)(CX*4), Y9
	VCVTPS2PD (R9)(CX*4), Y10
	VCVTPS2PD (R10)(CX*4), Y11
	VCVTPS2PD (R11)(CX*4), Y12
	DOT4ACC
	ADDQ      $4, CX
	CMPQ      CX, R15
	JLT       rows4j

rows4t: // element j ≥ n&^3 into lane 0: the same ops on (x_j, 0, 0, 0)
	CMPQ      CX, DX
	JGE       rows4h
	VMOVSD    (SI)(CX*8), X8
	VMOVSS    (R8)(CX*4), X9
	VMOVSS    (R9)(CX*4), X10
	VMOVSS    (R10)(CX*4), X11
	VMOVSS    (R11)(CX*4), X12
	VCVTPS2PD X9, Y9
	VCVTPS2PD X10, Y10
	VCVTPS2PD X11, Y11
	VCVTPS2PD X12, Y12
	DOT4ACC
	INCQ      CX
	JMP       rows4t

rows4h:

	HSUM(Y0, X0, 0(DI)(AX*8))
	HSUM(Y1, X1, 8(DI)(AX*8))
	HSUM(Y2, X2, 16(DI)(AX*8))
	HSUM(Y3, X3, 24(DI)(AX*8))
	HSUM(Y4, X4, 0(BX)(AX*8))
	HSUM(Y5, X5, 8(BX)(AX*8))
	HSUM(Y6, X6, 16(BX)(AX*8))
	HSUM(Y7, X7, 24(BX)(AX*8))
	ADDQ $4, AX
	JMP  rows4

rows1:
	CMPQ AX, R14
	JGE  rowsdone
	MOVQ (R12), R8
	ADDQ R13, R12
	VXORPD Y0, Y0, Y0
	VXORPD Y4, Y4, Y4
	XORQ CX, CX
	CMPQ CX, R15
	JGE  rows1t

rows1j:
	VMOVUPD   (SI)(CX*8), Y8
	VCVTPS2PD (R8)(CX*4), Y9
	VMULPD    Y8, Y9, Y9
	VADDPD    Y9, Y0, Y0
	VANDPD    Y14, Y9, Y9
	VADDPD    Y9, Y4, Y4
	ADDQ      $4, CX
	CMPQ      CX, R15
	JLT       rows1j

rows1t:
	CMPQ      CX, DX
	JGE       rows1h
	VMOVSD    (SI)(CX*8), X8
	VMOVSS    (R8)(CX*4), X9
	VCVTPS2PD X9, Y9
	VMULPD    Y8, Y9, Y9
	VADDPD    Y9, Y0, Y0
	VANDPD    Y14, Y9, Y9
	VADDPD    Y9, Y4, Y4
	INCQ      CX
	JMP       rows1t

rows1h:

	HSUM(Y0, X0, 0(DI)(AX*8))
	HSUM(Y4, X4, 0(BX)(AX*8))
	INCQ AX
	JMP  rows1

rowsdone:
	VZEROUPPER
	RET
