package fuzz

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/attnvet/attnvet/internal/problem"
)

// familySeed is a DecodeFamily input: family index i, seed s, and one
// planted query value x.
func familySeed(i int, s uint64, x float32) []byte {
	b := make([]byte, 17+12)
	b[0] = byte(i)
	binary.LittleEndian.PutUint64(b[1:], s)
	binary.LittleEndian.PutUint64(b[9:], s*0x9e3779b97f4a7c15)
	binary.LittleEndian.PutUint32(b[17:], uint32(s))
	binary.LittleEndian.PutUint32(b[25:], math.Float32bits(x))
	return b
}

// TestDecodeFamily: any input decodes to a valid case, every family is
// reached, and planted values land in q.
func TestDecodeFamily(t *testing.T) {
	seen := map[problem.Family]int{}
	planted := 0
	for i := 0; i < 240; i++ {
		c := DecodeFamily(familySeed(i, uint64(i)*7+1, float32(i)-100))
		if err := c.Validate(); err != nil {
			t.Fatalf("input %d: invalid case (%v): %s", i, err, c)
		}
		seen[c.Family]++
		planted += len(c.Specials)
	}
	for _, f := range Families {
		if seen[f] == 0 {
			t.Errorf("family %s never decoded", f)
		}
	}
	if planted == 0 {
		t.Error("no planted value")
	}
	for _, b := range [][]byte{nil, {3}, make([]byte, 100)} {
		if err := DecodeFamily(b).Validate(); err != nil {
			t.Errorf("DecodeFamily(%v): %v", b, err)
		}
	}
}
