package worker

import "syscall"

// setDeathSignal asks Linux to kill the worker if attnvet dies first.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
