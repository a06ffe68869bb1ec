//go:build !amd64

package vec

import "unsafe"

const useAsm = false

func maxAbsBits32AVX2(p *float32, n int) uint32 { panic("unreachable") }
func axpyStrideAVX2(c *float64, cstride uintptr, v unsafe.Pointer, vstride uintptr, nk int, o, absV *float64, n int) {
	panic("unreachable")
}
func dotRowsAVX2(q *float64, n int, rows unsafe.Pointer, stride uintptr, nk int, dot, abs *float64) {
	panic("unreachable")
}
func devNAVX2(c *[4]float64, v *[]float32, nk int, o, d1, da, dx, dm *float64, n int) {
	panic("unreachable")
}
func expAVX2(dst, x *float64, n int, c *[16][4]float64) bool   { panic("unreachable") }
func exp32AVX2(dst, x *float32, n int, c *[16][4]float64) bool { panic("unreachable") }
func axpyRows32AVX2(p *float32, rows unsafe.Pointer, stride uintptr, nk int, o *float32, n int) {
	panic("unreachable")
}
func normalsBF16AVX2(dst *float32, draws *uint64, groups int, scale float64, c *[13][4]uint64) int {
	panic("unreachable")
}
