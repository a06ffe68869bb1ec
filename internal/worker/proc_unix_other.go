//go:build unix && !linux

package worker

import (
	"os"
	"os/exec"
	"syscall"
)

// setDeathSignal: only Linux has a parent-death signal; elsewhere the
// worker sees its stdin close when attnvet exits.
func setDeathSignal(*syscall.SysProcAttr) {}

// command is the plain shell command (no supervisor off Linux).
func command(line string) (*exec.Cmd, *os.File, error) { return shellCommand(line), nil, nil }

// terminate kills the process group.
func terminate(c *exec.Cmd, _ bool) { killGroup(c) }
