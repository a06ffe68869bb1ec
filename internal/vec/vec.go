// Package vec holds the float64 reference's inner kernels: the score dot
// product, the P·V accumulation and the deviation sums; num.Exp four lanes
// at a time (Exp, Exp32: exp.go); and the FP32 emulations' P·V
// (AxpyRows32: rows32.go). On amd64 with AVX2 they run in assembly,
// vectorised across independent output elements, keys or arguments;
// elsewhere, and on CPUs without AVX2, in the pure-Go loops (num.Exp).
//
// Both paths give the same bits: every lane does the scalar code's
// operations on its element in the scalar code's order (no sum is
// reassociated, no multiply-add is fused, float32 → float64 conversion is
// exact). TestKernelsMatchGo checks this bit for bit on random and special
// inputs; internal/determinism checks it end to end against arm64.
package vec

import (
	"math"
	"unsafe"
)

// Accelerated reports whether the assembly kernels are in use.
func Accelerated() bool { return useAsm }

// Dot2x4 returns, for each of four keys k[i] (keys may repeat), Σ q_d k_id
// and Σ |q_d k_id| in float64 (products of float32 values are exact in
// float64), each in four interleaved partial sums s_l = Σ_{d ≡ l mod 4}
// (the tail d ≥ 4⌊D/4⌋ goes to s_0), combined as (s_0 + s_1) + (s_2 + s_3).
func Dot2x4(q []float64, k *[4][]float32, dot, abs *[4]float64) {
	n := len(q)
	k0, k1, k2, k3 := k[0][:n], k[1][:n], k[2][:n], k[3][:n]
	if !useAsm || n == 0 {
		for i, kk := range [4][]float32{k0, k1, k2, k3} {
			dot[i], abs[i] = dot2Go(q, kk)
		}
		return
	}
	dotRowsAVX2(&q[0], n, unsafe.Pointer(&k[0]), unsafe.Sizeof(k[0]), 4, &dot[0], &abs[0])
}

// MaxAbsBits32 is the largest of bits(v) & 0x7fffffff over vs (0 for
// none), unsigned: |v|'s bit pattern, which orders magnitudes, with NaNs
// above +Inf (the caller decides what a NaN means).
func MaxAbsBits32(vs []float32) uint32 {
	var top uint32
	i := 0
	if useAsm && len(vs) >= 8 {
		i = len(vs) &^ 7
		top = maxAbsBits32AVX2(&vs[0], i)
	}
	return max(top, maxAbsBits32Go(vs[i:]))
}

func maxAbsBits32Go(vs []float32) uint32 {
	var t0, t1 uint32
	i := 0
	for ; i+2 <= len(vs); i += 2 {
		t0 = max(t0, math.Float32bits(vs[i])&0x7fffffff)
		t1 = max(t1, math.Float32bits(vs[i+1])&0x7fffffff)
	}
	if i < len(vs) {
		t0 = max(t0, math.Float32bits(vs[i])&0x7fffffff)
	}
	return max(t0, t1)
}

func dot2Go(q []float64, k []float32) (dot, abs float64) {
	k = k[:len(q)]
	var d0, d1, d2, d3, a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(q); i += 4 {
		p0 := q[i] * float64(k[i])
		p1 := q[i+1] * float64(k[i+1])
		p2 := q[i+2] * float64(k[i+2])
		p3 := q[i+3] * float64(k[i+3])
		d0 += p0
		d1 += p1
		d2 += p2
		d3 += p3
		a0 += math.Abs(p0)
		a1 += math.Abs(p1)
		a2 += math.Abs(p2)
		a3 += math.Abs(p3)
	}
	for ; i < len(q); i++ {
		pr := q[i] * float64(k[i])
		d0 += pr
		a0 += math.Abs(pr)
	}
	return (d0 + d1) + (d2 + d3), (a0 + a1) + (a2 + a3)
}

// axpy2Go adds p·v to o and p·|v| to absV: the scalar loop for one key.
func axpy2Go(p float64, v []float32, o, absV []float64) {
	v = v[:len(o)]
	absV = absV[:len(o)]
	for j, vj := range v {
		t := float64(p * float64(vj))
		o[j] += t
		absV[j] += math.Abs(t)
	}
}

// dev4Go adds c_w·|v_j − o_j| to accumulator w's element j for the four
// weights c = (c_1, c_a, c_x, c_m): the scalar loop for one key.
func dev4Go(c *[4]float64, v []float32, o, d1, da, dx, dm []float64) {
	n := len(o)
	v = v[:n]
	d1, da, dx, dm = d1[:n], da[:n], dx[:n], dm[:n]
	c1, ca, cx, cm := c[0], c[1], c[2], c[3]
	for j, vj := range v {
		d := math.Abs(float64(vj) - o[j])
		d1[j] += float64(c1 * d)
		da[j] += float64(ca * d)
		dx[j] += float64(cx * d)
		dm[j] += float64(cm * d)
	}
}

// AxpyN adds, for every key i in order, p_i·v_i to o and p_i·|v_i| to absV,
// with p_i = c[i][0]: o_j = o_j + t_0j + t_1j + …, left to right, the same
// bits as Axpy2 key after key. The assembly keeps o_j and absV_j in
// registers across all keys.
func AxpyN(c [][4]float64, v [][]float32, o, absV []float64) {
	n := len(o)
	absV = absV[:n]
	v = v[:len(c)]
	for _, vi := range v {
		_ = vi[:n]
	}
	if useAsm && n > 0 && len(c) > 0 {
		axpyStrideAVX2(&c[0][0], unsafe.Sizeof(c[0]), unsafe.Pointer(&v[0]), unsafe.Sizeof(v[0]), len(c), &o[0], &absV[0], n)
		return
	}
	if n >= 8 { // pure Go, long rows: key after key
		for i := range c {
			axpy2Go(c[i][0], v[i], o, absV)
		}
		return
	}
	// Short rows: one element at a time over the keys, axpy2Go's
	// operations in key order.
	for j := 0; j < n; j++ {
		oj, aj := o[j], absV[j]
		for i := range c {
			t := float64(c[i][0] * float64(v[i][j]))
			oj += t
			aj += math.Abs(t)
		}
		o[j], absV[j] = oj, aj
	}
}

// DevN adds, for every key i in order, c[i][w]·|v_ij − o_j| to accumulator
// w (d1, da, dx, dm), the same bits as dev4Go key after key. The assembly
// keeps the four accumulators in registers across all keys.
func DevN(c [][4]float64, v [][]float32, o, d1, da, dx, dm []float64) {
	n := len(o)
	d1, da, dx, dm = d1[:n], da[:n], dx[:n], dm[:n]
	v = v[:len(c)]
	for _, vi := range v {
		_ = vi[:n]
	}
	j := 0
	if useAsm && n >= 4 && len(c) > 0 {
		j = n &^ 3
		devNAVX2(&c[0], &v[0], len(c), &o[0], &d1[0], &da[0], &dx[0], &dm[0], j)
	}
	if n-j >= 8 {
		for i := range c {
			dev4Go(&c[i], v[i][j:n], o[j:], d1[j:], da[j:], dx[j:], dm[j:])
		}
		return
	}
	// The rest one element at a time over the keys, as AxpyN.
	for ; j < n; j++ {
		oj := o[j]
		s1, sa, sx, sm := d1[j], da[j], dx[j], dm[j]
		for i := range c {
			d := math.Abs(float64(v[i][j]) - oj)
			ci := &c[i]
			s1 += float64(ci[0] * d)
			sa += float64(ci[1] * d)
			sx += float64(ci[2] * d)
			sm += float64(ci[3] * d)
		}
		d1[j], da[j], dx[j], dm[j] = s1, sa, sx, sm
	}
}
