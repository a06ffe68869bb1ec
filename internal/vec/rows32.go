package vec

import "unsafe"

// AxpyRows32 adds, for every key c in order, p[c]·v_c to o in float32:
// o[j] = o[j] + float32(p[c]·v_c[j]), the same bits as that loop run key
// after key. Row v_c is the []float32 at rows + c·stride bytes (a field of
// the c-th element of the caller's key slice), each at least len(o) long;
// the caller checks that. It returns how many leading elements of o it
// did (a multiple of 8, 0 without the assembly); the caller does the rest.
func AxpyRows32(p []float32, rows unsafe.Pointer, stride uintptr, o []float32) int {
	n := len(o) &^ 7
	if !useAsm || n == 0 || len(p) == 0 {
		return 0
	}
	axpyRows32AVX2(&p[0], rows, stride, len(p), &o[0], n)
	return n
}
