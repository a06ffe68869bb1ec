//go:build unix

package worker

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

var outsideSignals = map[syscall.Signal]string{
	syscall.SIGKILL: "SIGKILL", syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT",
	syscall.SIGHUP: "SIGHUP", syscall.SIGQUIT: "SIGQUIT",
}

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

// outsideSignal reports whether ps is a death by a signal that another
// process sends (SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGQUIT), as opposed
// to a fault of the worker's own (SIGSEGV, SIGABRT, …) or an exit. With
// shell, an exit status 128+n counts as signal n (the shell reports its
// child's death so).
func outsideSignal(ps *os.ProcessState, shell bool) (string, bool) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return "", false
	}
	var sig syscall.Signal
	switch {
	case ws.Signaled():
		sig = ws.Signal()
	case shell && ws.Exited() && ws.ExitStatus() > 128:
		sig = syscall.Signal(ws.ExitStatus() - 128)
	default:
		return "", false
	}
	name, ok := outsideSignals[sig]
	return name, ok
}

// reportedStatus describes a supervisor's status line ("exit N",
// "signal N") as outsideSignal would the process state.
func reportedStatus(line string, shell bool) (string, bool) {
	kind, n, _ := strings.Cut(line, " ")
	code, err := strconv.Atoi(n)
	if err != nil {
		return "status " + strconv.Quote(line), false
	}
	if kind == "signal" {
		sig := syscall.Signal(code)
		if name, outside := outsideSignals[sig]; outside {
			return fmt.Sprintf("signal: %v: killed by %s, a signal from outside", sig, name), true
		}
		return fmt.Sprintf("signal: %v", sig), false
	}
	if code == 0 {
		return "it exited with status 0", false
	}
	if shell && code > 128 {
		if name, outside := outsideSignals[syscall.Signal(code-128)]; outside {
			return fmt.Sprintf("exit status %d: killed by %s, a signal from outside", code, name), true
		}
	}
	return fmt.Sprintf("exit status %d", code), false
}
