//go:build unix

// Package cputime reads the process's CPU time, so benchmarks on a shared
// machine can report CPU per operation next to the wall time that other
// load inflates.
package cputime

import (
	"syscall"
	"time"
)

// Process is the process's user + system CPU time, all threads; 0 if it
// cannot be read.
func Process() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
