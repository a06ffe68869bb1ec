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
