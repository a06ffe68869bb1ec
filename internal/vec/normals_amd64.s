#include "textflag.h"

// NormalsBF16's kernel: lane l of a group is value 4g+l, its operations
// those of the scalar formula in the same order, no FMA. The unit values
// are exact (53-bit integers built from two exact halves, an exact power
// of two scale), so their construction does not need the scalar order.

// UNIT turns the draws in y into their unit values u = float64(x>>11)·2^-53.
// Uses t.
#define UNIT(y, t) \
	VPSRLQ $11, y, y; \
	VPSRLQ $32, y, t; \
	VPAND  0(DX), y, y; \
	VPOR   32(DX), y, y; \
	VSUBPD 32(DX), y, y; \
	VPOR   64(DX), t, t; \
	VSUBPD 64(DX), t, t; \
	VADDPD t, y, y; \
	VMULPD 96(DX), y, y

// func normalsBF16AVX2(dst *float32, draws *uint64, groups int, scale float64, c *[13][4]uint64) int
TEXT ·normalsBF16AVX2(SB), NOSPLIT, $0-48
	MOVQ         dst+0(FP), DI
	MOVQ         draws+8(FP), SI
	MOVQ         groups+16(FP), CX
	VBROADCASTSD scale+24(FP), Y8
	MOVQ         c+32(FP), DX
	XORQ         BX, BX

nbloop:
	VMOVDQU (SI), Y0
	UNIT(Y0, Y4)
	VMOVDQU 32(SI), Y1
	UNIT(Y1, Y4)
	VADDPD  Y1, Y0, Y0
	VMOVDQU 64(SI), Y1
	UNIT(Y1, Y4)
	VADDPD  Y1, Y0, Y0
	VMOVDQU 96(SI), Y1
	UNIT(Y1, Y4)
	VADDPD  Y1, Y0, Y0
	VSUBPD  128(DX), Y0, Y0 // s − 2
	VMULPD  160(DX), Y0, Y0 // ·√3: x
	VMULPD  Y8, Y0, Y0      // x·scale

	// b += 2^44 − 1 + (b>>45)&1; b &^= 2^45 − 1
	VPSRLQ $45, Y0, Y1
	VPAND  192(DX), Y1, Y1
	VPADDQ 224(DX), Y1, Y1
	VPADDQ Y0, Y1, Y1
	VPAND  256(DX), Y1, Y1

	// fast iff 896 < e < 0x7ff (e the exponent of b) and |rounded| ≤ 0x1.fep127
	VPSRLQ   $52, Y0, Y2
	VPAND    288(DX), Y2, Y2
	VPCMPGTQ 320(DX), Y2, Y3
	VPCMPEQQ 288(DX), Y2, Y2
	VPANDN   Y3, Y2, Y3
	VPAND    352(DX), Y1, Y2
	VPCMPGTQ 384(DX), Y2, Y2
	VPANDN   Y3, Y2, Y3
	VMOVMSKPD Y3, AX
	CMPL     AX, $15
	JNE      nbdone

	VCVTPD2PSY Y1, X1
	VMOVUPS    X1, (DI)
	ADDQ       $128, SI
	ADDQ       $16, DI
	INCQ       BX
	CMPQ       BX, CX
	JLT        nbloop

nbdone:
	MOVQ BX, ret+40(FP)
	VZEROUPPER
	RET
