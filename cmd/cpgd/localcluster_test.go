package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cpggo/cpg/internal/proctest"
	"github.com/stretchr/testify/require"
)

// cpgd local-cluster, run as a user runs it: three agents that see each
// other, each with its data directory, and a SIGINT that stops every one
// of them gracefully and leaves no process behind.
func TestLocalClusterStartsThreeNodesAndStopsThemAll(t *testing.T) {
	bin, err := proctest.Binary()
	require.NoError(t, err)
	dir := t.TempDir()
	cmd := exec.Command(bin, "local-cluster", "--http-port", "0", "--dir", dir, "--log-level", "warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	// One goroutine reads stdout to its end, then reaps the process.
	lines := make(chan string, 256)
	waited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range lines {
		}
	})

	// The node lines, up to the line that ends the description.
	nodeLine := regexp.MustCompile(`^\s+(n\d)\s+(http://\S+)\s+gossip (\S+)\s+pid (\d+)$`)
	type node struct {
		name, api string
		pid       int
	}
	var nodes []node
	var all []string
	deadline := time.After(40 * time.Second)
	for ready := false; !ready; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("cpgd local-cluster ended before its nodes were up; stdout:\n%q\nstderr:\n%s", all, stderr.String())
			}
			all = append(all, line)
			if m := nodeLine.FindStringSubmatch(line); m != nil {
				pid, _ := strconv.Atoi(m[4])
				nodes = append(nodes, node{m[1], m[2], pid})
			}
			ready = line == "Ctrl-C stops every node."
		case <-deadline:
			t.Fatalf("the cluster did not come up; stdout:\n%q\nstderr:\n%s", all, stderr.String())
		}
	}
	require.Len(t, nodes, 3, "stdout:\n%q", all)

	for _, n := range nodes {
		alive, err := aliveNodes(context.Background(), n.api)
		require.NoError(t, err, n.name)
		require.Equal(t, map[string]bool{"n1": true, "n2": true, "n3": true}, alive, "%s's GET /v1/nodes", n.name)
		require.DirExists(t, filepath.Join(dir, n.name), "each node has its data directory")
		require.NoError(t, syscall.Kill(n.pid, 0), "%s runs as pid %d", n.name, n.pid)
	}

	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	var rest []string
	for line := range lines {
		rest = append(rest, line)
	}
	select {
	case err := <-waited:
		require.NoError(t, err, "cpgd local-cluster exits 0 after SIGINT; stderr:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("cpgd local-cluster still running 30 s after SIGINT")
	}
	for _, n := range nodes {
		require.Contains(t, rest, n.name+" stopped: exit status 0", "every node left gracefully")
		// Its parent waited for it, so it is gone, not a zombie.
		err := syscall.Kill(n.pid, 0)
		require.True(t, errors.Is(err, syscall.ESRCH), "%s (pid %d) is gone: kill 0 says %v", n.name, n.pid, err)
	}
}

// syncBuffer is a bytes.Buffer a process writes to while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
