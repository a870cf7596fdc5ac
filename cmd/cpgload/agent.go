package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// agent is one cpgd process on loopback, with a data dir of its own.
type agent struct {
	addr    string // host:port of the API
	cmd     *exec.Cmd
	dataDir string
	exited  chan struct{}
	log     strings.Builder // the end of its log, for errors
}

// startAgent runs binary as a single-node agent and returns once its API
// listens.
func startAgent(binary string, extra []string) (*agent, error) {
	dir, err := os.MkdirTemp("", "cpgload-")
	if err != nil {
		return nil, err
	}
	args := append([]string{"agent", "--name", "load", "--http", "127.0.0.1:0", "--data-dir", dir, "--log-level", "info"}, extra...)
	a := &agent{cmd: exec.Command(binary, args...), dataDir: dir, exited: make(chan struct{})}
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := a.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	started := make(chan string, 1)
	go a.readLog(stderr, started)
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	select {
	case a.addr = <-started:
		if err := a.waitReady(20 * time.Second); err != nil {
			a.stop()
			return nil, err
		}
		return a, nil
	case <-a.exited:
		os.RemoveAll(dir)
		return nil, fmt.Errorf("cpgd exited at start: %s", a.log.String())
	case <-time.After(20 * time.Second):
		a.stop()
		return nil, errors.New("cpgd did not start within 20 s")
	}
}

// waitReady waits until /readyz answers 200: the API listens before the
// agent has loaded its data and answers 503 until then.
func (a *agent) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := dial(a.addr)
		status := 0
		if err == nil {
			status, err = c.do(request("GET", a.addr, "/readyz", "", nil))
			c.close()
		}
		if err == nil && status == 200 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cpgd not ready within %v (last: status %d, %v): %s", within, status, err, a.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readLog keeps the log's last lines and hands the API's address from the
// "cpgd agent started" line to started.
func (a *agent) readLog(r io.Reader, started chan<- string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if a.log.Len() < 4000 {
			a.log.WriteString(line + "\n")
		}
		if started == nil || !strings.Contains(line, `msg="cpgd agent started"`) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "http=http://"); ok {
				started <- v
				started = nil
			}
		}
	}
}

// stop ends the agent (SIGTERM, then SIGKILL after 5 s) and removes its
// data dir.
func (a *agent) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(5 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
	os.RemoveAll(a.dataDir)
}

// clockTicks is the kernel's unit of process CPU time in /proc (USER_HZ,
// 100 on Linux everywhere that matters).
const clockTicks = 100

// cpuTime reads the agent's CPU time so far (user and system) from
// /proc; 0 where there is none.
func (a *agent) cpuTime() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after it. utime and stime are fields 14 and 15.
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}
