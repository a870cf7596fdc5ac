package main

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// An idle watch stream costs the agent little: 1,000 open streams (raw
// connections on the client side, which keep no buffers or goroutines)
// add a few kilobytes each to the process's heap and stacks, where the
// issue measured 539 MB for 4,000.
func TestIdleWatchStreamsCostLittleMemory(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("opens 1,000 streams; measures memory, which the race detector inflates")
	}
	const streams = 1000
	base := startAgent(t, "--max-watches-per-client", fmt.Sprint(streams), "--log-level", "warn")
	addr := strings.TrimPrefix(base, "http://")
	before, beforeStacks := inUse()
	conns := make([]net.Conn, 0, streams)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range streams {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		conns = append(conns, c)
		_, err = fmt.Fprintf(c, "GET /v1/scopes/default/watch?pattern=/idle/%d HTTP/1.1\r\nHost: %s\r\n\r\n", i, addr)
		require.NoError(t, err)
		// Wait for the first heartbeat: the stream is open.
		r := bufio.NewReaderSize(c, 16)
		for {
			line, err := r.ReadString('\n')
			require.NoError(t, err)
			if strings.Contains(line, "heartbeat") {
				break
			}
		}
	}
	after, afterStacks := inUse()
	perStream := float64(after-before) / streams
	t.Logf("%d idle streams: heap and stacks %.1f MB -> %.1f MB, %.1f KiB per stream, of which %.1f KiB of goroutine stacks (both ends of the connection; the client's end is a socket)",
		streams, float64(before)/1e6, float64(after)/1e6, perStream/1024, float64(afterStacks-beforeStacks)/streams/1024)
	require.Less(t, perStream, 32.0*1024, "an idle stream costs less than 32 KiB")
}

// inUse is the heap and goroutine stacks in use after a collection, and
// the stacks alone.
func inUse() (total, stacks uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse, m.StackInuse
}

// Clients that stop reading pin nothing of the agent's but their
// connection: 200 of them watching a group that gets 1,000 joins of 3 KB
// each (3 MB of events per stream, 600 MB in all if the agent buffered
// them) leave the agent's heap a few megabytes larger: each event is
// encoded once and held by the journal, the rest waits in the kernel's
// socket buffers or is never written.
func TestNonReadingWatchersPinLittleMemory(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("opens 200 streams; measures memory, which the race detector inflates")
	}
	const streams = 200
	base := startAgent(t, "--max-watches-per-client", fmt.Sprint(streams), "--watch-write-timeout", "1m", "--log-level", "warn")
	addr := strings.TrimPrefix(base, "http://")
	before, _ := inUse()
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	for range streams {
		c, err := dialer.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = fmt.Fprintf(c, "GET /v1/scopes/default/watch?pattern=/busy HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		require.NoError(t, err)
	}
	meta := fmt.Sprintf(`{"v":%q}`, strings.Repeat("x", 3000))
	for i := range 1000 {
		code, out := call(t, "POST", base+"/v1/scopes/default/join", fmt.Sprintf(`{"group":"/busy","member":"m%d","meta":%s}`, i, meta))
		require.Equal(t, 200, code, out)
	}
	after, _ := inUse()
	t.Logf("%d streams that never read, 1,000 joins of 3 KB: heap and stacks %.1f MB -> %.1f MB", streams, float64(before)/1e6, float64(after)/1e6)
	require.Less(t, float64(after-before), 64e6, "the agent holds no copy of what its streams could not write")
}
