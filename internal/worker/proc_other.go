//go:build !unix

package worker

import (
	"os"
	"os/exec"
)

// shellCommand runs line through cmd.exe.
func shellCommand(line string) *exec.Cmd { return exec.Command("cmd", "/C", line) }

// killGroup kills the worker process.
func killGroup(c *exec.Cmd) {
	if c.Process != nil {
		_ = c.Process.Kill()
	}
}

// outsideSignal: without unix signals, no death is known to come from
// outside.
func outsideSignal(*os.ProcessState, bool) (string, bool) { return "", false }

// command is the plain command (no supervisor).
func command(line string) (*exec.Cmd, *os.File, error) { return shellCommand(line), nil, nil }

// terminate kills the process.
func terminate(c *exec.Cmd, _ bool) { killGroup(c) }

// reportedStatus: no supervisor reports here.
func reportedStatus(line string, _ bool) (string, bool) { return line, false }
