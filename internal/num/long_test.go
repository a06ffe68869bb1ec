package num

import (
	"os"
	"sync"
	"testing"
)

// longTests reports whether the exhaustive tests run in full. The README's
// `go test ./...` checks a sample of the float32 patterns (the special and
// boundary binades whole, a stride of the rest); .ci/run's long step sets
// ATTNVET_LONG=1 and checks all 2^32.
func longTests() bool { return long() }

// long reads the variable once: the exhaustive loops ask per pattern, and
// go test logs every os.Getenv of a test binary to its testlog (2^32
// lookups made a 25 GB log and filled the disk). It is read inside the
// first test, not at init, so that the test cache sees the dependence.
var long = sync.OnceValue(func() bool { return os.Getenv("ATTNVET_LONG") != "" })

// skipSampled marks a test that checked only its quick sample as skipped,
// naming the variable that runs it in full. A failure in the sample still
// fails the test (SkipNow after Errorf reports a failure).
func skipSampled(t *testing.T, what string) {
	t.Helper()
	t.Skipf("checked a sample only (%s); set ATTNVET_LONG=1 to check every float32 pattern", what)
}

// boundaryExp32 reports whether float32 biased exponent e (0..255) is one
// the quick samples check densely for the 16-bit format bf16 (true) or
// fp16: zero and the subnormals, the first normal binade, the largest
// finite binade and Inf/NaN; for fp16 also the binades of its underflow,
// subnormal and normal thresholds (2^-25, 2^-24, 2^-14) and of its
// overflow (2^15, 2^16).
func boundaryExp32(e uint32, bf16 bool) bool {
	switch e {
	case 0, 1, 254, 255:
		return true
	case 102, 103, 113, 142, 143:
		return !bf16
	}
	return false
}
