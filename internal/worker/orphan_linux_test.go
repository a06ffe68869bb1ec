package worker

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as an attnvet that starts a worker and waits
// to be killed (ATTNVET_TEST_PARENT is the worker's command line).
func init() {
	if line := os.Getenv("ATTNVET_TEST_PARENT"); line != "" {
		os.Unsetenv("ATTNVET_TEST_PARENT")
		if _, err := New(line, DefaultOptions()); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	// setsid: at the hello, start a child in a session of its own (out of
	// the process group) that sleeps; its pid goes to ATTNVET_FAKE_PID.child.
	fakeOnHello["setsid"] = func() {
		c := exec.Command("sleep", "300")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			panic(err)
		}
		os.WriteFile(os.Getenv("ATTNVET_FAKE_PID")+".child", []byte(strconv.Itoa(c.Process.Pid)), 0o644)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			pid, err := strconv.Atoi(string(b))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

func waitDead(t *testing.T, pid int, what string) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("%s (pid %d) survived", what, pid)
}

// A worker's child that calls setsid leaves the process group; it still
// dies with the worker (issue 14, defect 10).
func TestWorkerSetsidChildDies(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	w, err := New("ATTNVET_FAKE_PID='"+pidFile+"' "+fakeCmd(t, "setsid"), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Run(inputs(t, 1)); err != nil {
		t.Fatal(err)
	}
	child := readPid(t, pidFile+".child")
	if !alive(child) {
		t.Fatal("the setsid child is not running")
	}
	w.Close()
	waitDead(t, child, "the setsid child after Close")
}

// attnvet killed with SIGKILL: a hung worker under a shell-syntax command
// line (the shell's child, attnvet's grandchild) dies too (issue 14,
// defect 10).
func TestWorkerDiesWithAttnvet(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	line := fmt.Sprintf("ATTNVET_FAKE_WORKER=deaf ATTNVET_FAKE_PID='%s' '%s'; echo the shell stayed >&2", pidFile, exe)
	parent := exec.Command(exe)
	parent.Env = append(os.Environ(), "ATTNVET_TEST_PARENT="+line)
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	parent.Stderr = os.Stderr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill()
	l, _ := bufio.NewReader(out).ReadString('\n')
	if l != "ready\n" {
		t.Fatalf("parent: %q", l)
	}
	pid := readPid(t, pidFile)
	if !alive(pid) {
		t.Fatal("the worker is not running")
	}
	parent.Process.Kill()
	parent.Wait()
	waitDead(t, pid, "the worker after attnvet's SIGKILL")
}
