package vec

import "unsafe"

// The float64 kernels over a caller's key structs: row c is the []float32
// header at rows + c·stride bytes (a field of the c-th element of the
// caller's key slice), so a whole row of keys goes to the assembly in one
// call, with no gathering of slices. Each row is at least as long as the
// caller's vector; the caller checks that.

// DotRows sets dot[c] and abs[c] to key c's Dot2x4 sums Σ q_j·k_cj and
// Σ |q_j·k_cj| (the same bits), for c < len(dot). It reports whether it
// did: it needs the assembly and len(q) ≥ 1 (the caller takes Dot2x4
// otherwise).
func DotRows(q []float64, rows unsafe.Pointer, stride uintptr, dot, abs []float64) bool {
	if !useAsm || len(q) == 0 {
		return false
	}
	abs = abs[:len(dot)]
	if len(dot) > 0 {
		dotRowsAVX2(&q[0], len(q), rows, stride, len(dot), &dot[0], &abs[0])
	}
	return true
}

// AxpyRows is AxpyN with weights p[c] and rows at rows + c·stride: for
// every key in order, o_j += p_c·v_cj and absV_j += |p_c·v_cj| (the same
// bits). It reports whether it did: it needs the assembly and len(o) ≥ 1
// (the caller takes AxpyN otherwise).
func AxpyRows(p []float64, rows unsafe.Pointer, stride uintptr, o, absV []float64) bool {
	n := len(o)
	if !useAsm || n == 0 {
		return false
	}
	absV = absV[:n]
	if len(p) > 0 {
		axpyStrideAVX2(&p[0], 8, rows, stride, len(p), &o[0], &absV[0], n)
	}
	return true
}
