//go:build unix

package worker

import (
	"os"
	"syscall"
)

// dieBySignal ends the fake worker by signal sig: a shell takes over the
// process and sends it to itself (Go's runtime would turn a SIGSEGV into
// exit 2).
func dieBySignal(sig string) {
	syscall.Exec("/bin/sh", []string{"sh", "-c", "kill -" + sig + " $$"}, os.Environ())
}
