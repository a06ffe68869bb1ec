package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/attnvet/attnvet/internal/num"
)

// expArg draws an exp argument: every range num.Exp branches on (near
// zero, the normal path, the k limits near ±700-710, underflow below
// −745, overflow above 709.78), the boundaries themselves, and specials.
func expArg(r *rand.Rand) float64 {
	switch r.IntN(10) {
	case 0:
		return specials64[r.IntN(len(specials64))]
	case 1:
		return (r.Float64()*2 - 1) * math.Ldexp(1, -r.IntN(40)-20) // around ±2^-28
	case 2:
		return (r.Float64()*2 - 1) * 760 // beyond the assembly's range too
	case 3:
		b := []float64{700, -700, 709.782712893383973096, -745.13321910194110842, 1.0 / (1 << 28), 0.5 * math.Ln2, math.Ln2}
		v := b[r.IntN(len(b))]
		if r.IntN(2) == 0 {
			v = -v
		}
		return math.Float64frombits(math.Float64bits(v) + uint64(r.IntN(5)) - 2)
	case 4:
		// k·ln2 ± 1/2: where the rounding of k flips
		k := float64(r.IntN(2000) - 1000)
		return math.Nextafter((k+0.5)*math.Ln2, math.Inf(r.IntN(2)*2-1))
	case 5:
		return -r.ExpFloat64() * 30 // softmax exponents: x − max ≤ 0
	}
	return r.NormFloat64() * math.Exp2(float64(r.IntN(14)-4))
}

func sameExp(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
		t.Fatalf("%s: Exp %v (%#016x), num.Exp %v (%#016x)", what, got, math.Float64bits(got), want, math.Float64bits(want))
	}
}

// TestExpMatchesNum: Exp and Exp32 give num.Exp's and num.Exp32's bits on
// every length (tails included) and every range of the argument, 6000
// vectors, with and without lanes the assembly hands back.
func TestExpMatchesNum(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 7))
	for trial := range 6000 {
		n := r.IntN(40)
		if trial%10 == 0 {
			n = 4 * r.IntN(100)
		}
		x := make([]float64, n)
		x32 := make([]float32, n)
		narrow := trial%3 == 0 // only regular lanes: the assembly's whole answer
		for i := range x {
			x[i] = expArg(r)
			for narrow && !(math.Abs(x[i]) < expWide) {
				x[i] = expArg(r)
			}
			x32[i] = float32(x[i])
		}
		got, got32 := make([]float64, n), make([]float32, n)
		Exp(got, x)
		Exp32(got32, x32)
		for i := range x {
			name := fmt.Sprintf("trial %d n %d x[%d] = %v", trial, n, i, x[i])
			sameExp(t, name, got[i], num.Exp(x[i]))
			sameExp(t, name+" (float32)", float64(got32[i]), float64(num.Exp32(x32[i])))
		}
	}
}

// TestExpDense: a dense sweep of the regular range, where a wrong constant
// or a swapped operand would show on most arguments.
func TestExpDense(t *testing.T) {
	const n = 1 << 16
	x, got := make([]float64, n), make([]float64, n)
	x32, got32 := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = -720 + 1440*float64(i)/n
		x32[i] = float32(x[i])
	}
	Exp(got, x)
	Exp32(got32, x32)
	for i := range x {
		sameExp(t, fmt.Sprintf("x = %v", x[i]), got[i], num.Exp(x[i]))
		sameExp(t, fmt.Sprintf("x = %v (float32)", x32[i]), float64(got32[i]), float64(num.Exp32(x32[i])))
	}
}

func BenchmarkExp(b *testing.B) {
	x, dst := make([]float64, 256), make([]float64, 256)
	for i := range x {
		x[i] = -float64(i) / 16
	}
	b.Run("vec", func(b *testing.B) {
		for range b.N {
			Exp(dst, x)
		}
	})
	b.Run("num", func(b *testing.B) {
		for range b.N {
			for i, v := range x {
				dst[i] = num.Exp(v)
			}
		}
	})
}
