package vec

import (
	"os"
	"unsafe"
)

// useAsm: the CPU has AVX2 and the OS saves YMM state. ATTNVET_NOASM=1
// forces the pure-Go path (for A/B timing and tests).
var useAsm = hasAVX2() && os.Getenv("ATTNVET_NOASM") == ""

func hasAVX2() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, avx = 1 << 27, 1 << 28
	if ecx1&osxsave == 0 || ecx1&avx == 0 {
		return false
	}
	if xcr0, _ := xgetbv(0); xcr0&6 != 6 { // XMM and YMM state enabled
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
func xgetbv(index uint32) (eax, edx uint32)

//go:noescape
func maxAbsBits32AVX2(p *float32, n int) uint32

//go:noescape
func axpyStrideAVX2(c *float64, cstride uintptr, v unsafe.Pointer, vstride uintptr, nk int, o, absV *float64, n int)

//go:noescape
func dotRowsAVX2(q *float64, n int, rows unsafe.Pointer, stride uintptr, nk int, dot, abs *float64)

//go:noescape
func devNAVX2(c *[4]float64, v *[]float32, nk int, o, d1, da, dx, dm *float64, n int)

//go:noescape
func expAVX2(dst, x *float64, n int, c *[16][4]float64) (wide bool)

//go:noescape
func exp32AVX2(dst, x *float32, n int, c *[16][4]float64) (wide bool)

//go:noescape
func axpyRows32AVX2(p *float32, rows unsafe.Pointer, stride uintptr, nk int, o *float32, n int)

//go:noescape
func normalsBF16AVX2(dst *float32, draws *uint64, groups int, scale float64, c *[13][4]uint64) int
