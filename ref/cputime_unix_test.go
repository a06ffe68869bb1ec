//go:build unix

package ref_test

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time (all threads), so that
// benchmarks on a shared machine can report CPU per operation next to the
// wall time, which other load inflates.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
