package ref

// descaleV multiplies one row's output and its magnitudes by an FP8
// problem's v descale: the attention of v̂ = v·v_descale is v_descale times
// that of the codes, and every deviation Σ p·c·|v − o| scales alike
// (float64 products: a relative error of 2^−53, the reference's own level).
func (r *Result) descaleV(e0, dv int, vd float64) {
	for _, xs := range [][]float64{r.O, r.AbsV, r.Dev1, r.DevA, r.DevX, r.DevM} {
		if xs == nil {
			continue
		}
		for j := e0; j < e0+dv; j++ {
			xs[j] *= vd
		}
	}
}
