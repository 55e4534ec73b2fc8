#include "textflag.h"

// func adamAVX2(p, grad, m, v *float32, n int, c *adamConsts)
// Updates n/8*8 elements; see adamConsts for the formula.
TEXT ·adamAVX2(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSS 0(AX), Y8   // wd (L2 term added to the gradient)
	VBROADCASTSS 4(AX), Y9   // decay (decoupled weight decay factor)
	VBROADCASTSS 8(AX), Y10  // beta1
	VBROADCASTSS 12(AX), Y11 // 1 - beta1
	VBROADCASTSS 16(AX), Y12 // beta2
	VBROADCASTSS 20(AX), Y13 // 1 - beta2
	VBROADCASTSS 24(AX), Y14 // step = lr / bias correction 1
	VBROADCASTSS 28(AX), Y15 // 1 / sqrt(bias correction 2)
	VBROADCASTSS 32(AX), Y7  // eps
	SHRQ $3, CX
	JZ   done

loop:
	VMOVUPS     (SI), Y0      // g
	VMOVUPS     (DI), Y1      // p
	VFMADD231PS Y1, Y8, Y0    // g += wd*p
	VMULPS      Y9, Y1, Y1    // p *= decay
	VMOVUPS     (R8), Y2      // m
	VMULPS      Y10, Y2, Y2   // m *= beta1
	VFMADD231PS Y0, Y11, Y2   // m += (1-beta1)*g
	VMOVUPS     (R9), Y3      // v
	VMULPS      Y12, Y3, Y3   // v *= beta2
	VMULPS      Y0, Y0, Y4    // g*g
	VFMADD231PS Y4, Y13, Y3   // v += (1-beta2)*g*g
	VMOVUPS     Y2, (R8)
	VMOVUPS     Y3, (R9)
	VSQRTPS     Y3, Y5
	VMULPS      Y15, Y5, Y5   // sqrt(v) / sqrt(bc2)
	VADDPS      Y7, Y5, Y5    // + eps
	VMULPS      Y14, Y2, Y6   // step*m
	VDIVPS      Y5, Y6, Y6    // step*m / denom
	VSUBPS      Y6, Y1, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	ADDQ        $32, R8
	ADDQ        $32, R9
	DECQ        CX
	JNZ         loop

done:
	VZEROUPPER
	RET
