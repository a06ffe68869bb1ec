package worker

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// On Linux a worker runs under a supervisor: this binary, started again
// with superviseEnv set, which init turns into supervise before main runs.
// The supervisor is a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so
// every process the worker starts stays in its tree even after setsid or
// a double fork; it gets SIGTERM when attnvet dies (Pdeathsig, even on
// SIGKILL), and when attnvet asks it to stop, when attnvet dies, or when
// the worker's leader exits, it kills the whole tree. It reports the
// leader's exit status on fd 3.
const superviseEnv = "ATTNVET_WORKER_SUPERVISE"

func init() {
	if parent := os.Getenv(superviseEnv); parent != "" {
		os.Exit(supervise(parent, os.Args[1:]))
	}
}

const prSetChildSubreaper = 36

// supervise runs argv (the shell and the worker's command line) and
// returns the supervisor's exit code. Its status line on fd 3 is "exit N"
// or "signal N".
func supervise(parent string, argv []string) int {
	os.Unsetenv(superviseEnv)
	signal.Ignore(syscall.SIGPIPE)
	stop := make(chan os.Signal, 4)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	status := os.NewFile(3, "status")
	syscall.CloseOnExec(3) // the worker must not hold it
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		fmt.Fprintf(os.Stderr, "attnvet worker supervisor: cannot become a subreaper: %v\n", e)
	}
	if strconv.Itoa(os.Getppid()) != parent {
		return 1 // attnvet died before Pdeathsig was set
	}
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "attnvet worker supervisor: no command")
		return 2
	}
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "attnvet worker supervisor: %v\n", err)
		fmt.Fprintf(status, "exit 127\n")
		return 127
	}
	// Only the worker holds the protocol pipes now: its death ends them.
	os.Stdin.Close()
	os.Stdout.Close()
	exited := make(chan struct{})
	go func() {
		c.Wait()
		close(exited)
	}()
	select {
	case <-exited:
		killTree(c.Process.Pid) // what the leader left behind
	case <-stop:
		killTree(-1)
		<-exited
	}
	ws, _ := c.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		fmt.Fprintf(status, "signal %d\n", int(ws.Signal()))
	} else {
		fmt.Fprintf(status, "exit %d\n", ws.ExitStatus())
	}
	status.Close()
	return 0
}

// killTree SIGKILLs every descendant of this process (with a subreaper,
// that is everything the worker started) until none is left, reaping
// those that became our children; leader, if > 0, is left to its Wait.
func killTree(leader int) {
	self := os.Getpid()
	for pass := 0; pass < 100; pass++ {
		live, ours := descendants(self)
		for _, pid := range live {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for _, pid := range ours {
			if pid != leader {
				var ws syscall.WaitStatus
				syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			}
		}
		if len(live) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// descendants lists the live (not zombie) descendants of root, and the
// direct children of root (zombies included), from /proc.
func descendants(root int) (live, children []int) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, nil
	}
	kids := map[int][]int{}
	zombie := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		kids[ppid] = append(kids[ppid], pid)
		zombie[pid] = f[0] == "Z" || f[0] == "X"
	}
	children = kids[root]
	queue := append([]int(nil), kids[root]...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if !zombie[pid] {
			live = append(live, pid)
		}
		queue = append(queue, kids[pid]...)
	}
	return live, children
}

// command is the worker's process: the supervisor running /bin/sh -c
// line, in a process group of its own, told SIGTERM if attnvet dies; its
// status pipe's read end. Without our own executable it is the plain
// shell command.
func command(line string) (*exec.Cmd, *os.File, error) {
	exe, err := os.Executable()
	if err != nil {
		return shellCommand(line), nil, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	c := exec.Command(exe, "/bin/sh", "-c", execPrefix(line)+line)
	c.Env = append(os.Environ(), superviseEnv+"="+strconv.Itoa(os.Getpid()))
	c.ExtraFiles = []*os.File{w}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	return c, r, nil
}

// terminate asks the supervisor to kill the worker's tree (or, for a
// plain shell command, kills its process group).
func terminate(c *exec.Cmd, supervised bool) {
	if c.Process == nil {
		return
	}
	if supervised {
		_ = c.Process.Signal(syscall.SIGTERM)
		return
	}
	killGroup(c)
}

// setDeathSignal asks Linux to kill the worker if attnvet dies first.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
