package cases

import "math/bits"

// pcg is math/rand/v2's PCG (a 128-bit LCG, state·mul + inc mod 2^128,
// with the DXSM output of each new state), reimplemented so the
// generator's hot loop can step it several times at once: state_k =
// mul^k·state + inc·(mul^(k−1) + … + 1) needs no earlier state_j, so the
// four draws of a normal value are four independent multiply chains
// instead of one dependent chain. TestPCGMatchesStdlib compares its
// output with rand.PCG's, draw for draw.
type pcg struct{ hi, lo uint64 }

// u128 is a 128-bit unsigned integer.
type u128 struct{ hi, lo uint64 }

func mul128(a, b u128) u128 {
	hi, lo := bits.Mul64(a.lo, b.lo)
	hi += a.hi*b.lo + a.lo*b.hi
	return u128{hi, lo}
}

func add128(a, b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c)
	return u128{hi, lo}
}

// The LCG's multiplier and increment, and the affine maps of 1-4 steps.
var (
	pcgMul = u128{2549297995355413924, 4865540595714422341}
	pcgInc = u128{6364136223846793005, 1442695040888963407}
	// pcgJump[k−1] = (mul^k, inc·(mul^(k−1) + … + 1)): k steps at once.
	pcgJump = func() (j [4][2]u128) {
		m, c := pcgMul, pcgInc
		for k := range j {
			j[k] = [2]u128{m, c}
			m, c = mul128(m, pcgMul), add128(mul128(c, pcgMul), pcgInc)
		}
		return j
	}()
)

// dxsm is the output of state s.
func dxsm(s u128) uint64 {
	const cheapMul = 0xda942042e4dd58b5
	hi := s.hi
	hi ^= hi >> 32
	hi *= cheapMul
	hi ^= hi >> 48
	hi *= s.lo | 1
	return hi
}

// Uint64 steps once and returns the output.
func (p *pcg) Uint64() uint64 {
	s := add128(mul128(u128{p.hi, p.lo}, pcgMul), pcgInc)
	p.hi, p.lo = s.hi, s.lo
	return dxsm(s)
}

// uint64x4 returns the next four outputs, in order.
func (p *pcg) uint64x4() (a, b, c, d uint64) {
	s := u128{p.hi, p.lo}
	s1 := add128(mul128(s, pcgJump[0][0]), pcgJump[0][1])
	s2 := add128(mul128(s, pcgJump[1][0]), pcgJump[1][1])
	s3 := add128(mul128(s, pcgJump[2][0]), pcgJump[2][1])
	s4 := add128(mul128(s, pcgJump[3][0]), pcgJump[3][1])
	p.hi, p.lo = s4.hi, s4.lo
	return dxsm(s1), dxsm(s2), dxsm(s3), dxsm(s4)
}
