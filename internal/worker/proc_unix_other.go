//go:build unix && !linux

package worker

import "syscall"

// setDeathSignal: only Linux has a parent-death signal; elsewhere the
// worker sees its stdin close when attnvet exits.
func setDeathSignal(*syscall.SysProcAttr) {}
