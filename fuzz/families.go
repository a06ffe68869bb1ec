package fuzz

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/props"
)

// Families are the families DecodeFamily draws, in the order its first
// byte selects them: those Decode's own byte layout does not state (Decode
// reaches them through flagOther).
var Families = []problem.Family{problem.Dense, problem.Combine, problem.MLA, problem.CSA, problem.HCA, problem.SWA}

// DecodeFamily turns any fuzz input into a valid case of one of Families:
// byte 0 picks the family, bytes 1-16 seed the campaign generator at its
// small size (props.Gen, with its edge classes: the structure comes from
// the generator, the fuzzer steers which draws it sees), and every further
// 12 bytes plant one query value — token, head and dimension from the first
// 8 (wrapped into the shape), raw FP32 bits from the last 4 — where the
// family has a query (not combine). Non-finite planted values make the case
// a contract violation, which the differential property reports.
func DecodeFamily(b []byte) cases.Case {
	var head [17]byte
	copy(head[:], b)
	fam := Families[int(head[0])%len(Families)]
	r := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(head[1:9]), binary.LittleEndian.Uint64(head[9:17])))
	c := props.Gen{Family: fam, Size: props.Small}.Draw(r)
	if fam == problem.Combine || len(b) <= 17 {
		return c
	}
	t := c.Tokens()
	for tail := b[17:]; len(tail) >= 12 && len(c.Specials) < 8; tail = tail[12:] {
		if t < 1 {
			break
		}
		v := float64(math.Float32frombits(binary.LittleEndian.Uint32(tail[8:12])))
		c.Specials = append(c.Specials, cases.Special{Tensor: "q",
			Token: int(binary.LittleEndian.Uint32(tail[0:4]) % uint32(t)),
			Head:  int(binary.LittleEndian.Uint16(tail[4:6]) % uint16(c.H)),
			Dim:   int(binary.LittleEndian.Uint16(tail[6:8]) % uint16(c.D)),
			Value: cases.F(v)})
	}
	if c.Validate() != nil {
		c.Specials = nil // a family whose q takes no specials: the drawn case as is
	}
	return c
}
