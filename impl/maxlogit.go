package impl

import "math"

// maxLogit is the last row's max_logit in the declared convention: the
// final running max m (natural units: the max of the rounded scores), or
// in base 2 m·float32(log2 e) in FP32; −Inf for a row with no key.
func (s *state) maxLogit() float32 {
	m := s.rowMax
	if s.in.MaxLogit.Base2 {
		return float32(m * float32(math.Log2E))
	}
	return m
}
