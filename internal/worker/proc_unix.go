//go:build unix

package worker

import (
	"os/exec"
	"syscall"
)

// shellCommand runs line through /bin/sh, in a process group of its own so
// that a timeout kills the worker and everything it started. A simple
// command is exec'd by the shell, so the worker is our child process.
func shellCommand(line string) *exec.Cmd {
	c := exec.Command("/bin/sh", "-c", execPrefix(line)+line)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(c.SysProcAttr)
	return c
}

// killGroup kills the process group of c.
func killGroup(c *exec.Cmd) {
	if c.Process == nil {
		return
	}
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	_ = c.Process.Kill()
}
