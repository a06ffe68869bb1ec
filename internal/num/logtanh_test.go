package num

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// bigLn computes ln x to ~200 bits with math/big (x > 0): argument halving
// to [1, 2), then ln m = 2·atanh((m−1)/(m+1)) summed to convergence.
func bigLn(x float64) *big.Float {
	const prec = 200
	f, e := math.Frexp(x)
	m := new(big.Float).SetPrec(prec).SetFloat64(f * 2)
	one := new(big.Float).SetPrec(prec).SetInt64(1)
	s := new(big.Float).SetPrec(prec).Quo(new(big.Float).SetPrec(prec).Sub(m, one), new(big.Float).SetPrec(prec).Add(m, one))
	s2 := new(big.Float).SetPrec(prec).Mul(s, s)
	sum := new(big.Float).SetPrec(prec)
	pow := new(big.Float).SetPrec(prec).Set(s)
	for k := 0; k < 200; k++ {
		term := new(big.Float).SetPrec(prec).Quo(pow, new(big.Float).SetPrec(prec).SetInt64(int64(2*k+1)))
		sum.Add(sum, term)
		pow.Mul(pow, s2)
	}
	sum.Mul(sum, new(big.Float).SetPrec(prec).SetInt64(2))
	// ln 2 from the same series at m = 2.
	ln2 := func() *big.Float {
		s := new(big.Float).SetPrec(prec).Quo(one, new(big.Float).SetPrec(prec).SetInt64(3))
		s2 := new(big.Float).SetPrec(prec).Mul(s, s)
		acc := new(big.Float).SetPrec(prec)
		pow := new(big.Float).SetPrec(prec).Set(s)
		for k := 0; k < 200; k++ {
			acc.Add(acc, new(big.Float).SetPrec(prec).Quo(pow, new(big.Float).SetPrec(prec).SetInt64(int64(2*k+1))))
			pow.Mul(pow, s2)
		}
		return acc.Mul(acc, new(big.Float).SetPrec(prec).SetInt64(2))
	}()
	el := new(big.Float).SetPrec(prec).Mul(ln2, new(big.Float).SetPrec(prec).SetInt64(int64(e-1)))
	return sum.Add(sum, el)
}

func TestLogAgainstBig(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	xs := []float64{1, 2, 0.5, math.E, 10, 1e-300, 1e300, math.SmallestNonzeroFloat64, math.MaxFloat64, 1 + 1e-15, 1 - 1e-16, 0.7071067811865476}
	for range 3000 {
		xs = append(xs, math.Ldexp(1+r.Float64(), r.IntN(2000)-1000))
	}
	worst := 0.0
	for _, x := range xs {
		want, _ := bigLn(x).Float64()
		got := Log(x)
		err := math.Abs(got - want)
		ulp := math.Max(math.Abs(math.Nextafter(want, math.Inf(1))-want), 5e-324)
		if err/ulp > worst {
			worst = err / ulp
		}
		if err > 4*ulp {
			t.Fatalf("Log(%v) = %v, want %v (%.1f ulps)", x, got, want, err/ulp)
		}
	}
	t.Logf("worst error %.2f ulps over %d inputs", worst, len(xs))
	for _, c := range []struct{ x, want float64 }{{0, math.Inf(-1)}, {math.Inf(1), math.Inf(1)}, {-1, math.NaN()}, {math.NaN(), math.NaN()}} {
		if got := Log(c.x); !(got == c.want || math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("Log(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

func TestTanhAgainstMath(t *testing.T) {
	// math.Tanh is accurate to about 1 ulp; agreement within 4 ulps of the
	// result checks the portable version's branches.
	r := rand.New(rand.NewPCG(3, 4))
	xs := []float64{0, math.Copysign(0, -1), 1e-30, 0.4999999, 0.5, 0.50000001, 1, 21.99, 22.01, 100, -3}
	for range 20000 {
		xs = append(xs, (r.Float64()*2-1)*math.Ldexp(1, r.IntN(12)-8))
	}
	for _, x := range xs {
		got, want := Tanh(x), math.Tanh(x)
		ulp := math.Abs(math.Nextafter(want, math.Inf(1)) - want)
		if math.Abs(got-want) > 4*ulp || math.Signbit(got) != math.Signbit(want) {
			t.Fatalf("Tanh(%v) = %v, want %v", x, got, want)
		}
	}
	if !math.IsNaN(Tanh(math.NaN())) || Tanh(math.Inf(1)) != 1 || Tanh(math.Inf(-1)) != -1 {
		t.Error("Tanh special values")
	}
}
