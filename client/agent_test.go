package client_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cpggo/cpg/client"
	"github.com/cpggo/cpg/internal/proctest"
	"github.com/stretchr/testify/require"
)

// agentProcess is a real cpgd agent on its own, on loopback.
type agentProcess struct {
	t       *testing.T
	args    []string
	addr    string // host:port of its API
	cmd     *exec.Cmd
	waited  chan error
	stopped bool
}

// startAgent runs a real cpgd agent on its own, on a free loopback port
// and a data dir of its own, until the test ends.
func startAgent(t *testing.T, args ...string) *agentProcess {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs cpgd")
	}
	a := &agentProcess{t: t, args: append([]string{"agent", "--name", "solo", "--data-dir", t.TempDir()}, args...)}
	a.start("127.0.0.1:0")
	t.Cleanup(a.stop)
	return a
}

// URL is the agent's API.
func (a *agentProcess) URL() string { return "http://" + a.addr }

func (a *agentProcess) start(httpAddr string) {
	t := a.t
	t.Helper()
	bin, err := proctest.Binary()
	require.NoError(t, err)
	a.cmd = exec.Command(bin, append(slices.Clone(a.args), "--http", httpAddr)...)
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := a.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, a.cmd.Start())
	a.waited, a.stopped = make(chan error, 1), false
	started := make(chan string, 1)
	go func(cmd *exec.Cmd, waited chan error) {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, `msg="cpgd agent started"`) {
				continue
			}
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "http=http://"); ok {
					started <- v
				}
			}
		}
		waited <- cmd.Wait()
	}(a.cmd, a.waited)
	select {
	case a.addr = <-started:
	case err := <-a.waited:
		t.Fatalf("the agent exited at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not start within 30 s")
	}
}

// stop ends the agent with SIGTERM, which must make it exit 0.
func (a *agentProcess) stop() {
	if a.stopped {
		return
	}
	a.stopped = true
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.waited:
		require.NoError(a.t, err, "the agent exits 0 on SIGTERM")
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		a.t.Error("the agent did not stop within 10 s of SIGTERM")
	}
}

// restart stops the agent and starts it again on the same port and data
// dir: a new run, which keeps the registrations but not the watch ids.
func (a *agentProcess) restart() {
	a.stop()
	a.start(a.addr)
}

func TestAgentAnswersEveryRegistryCall(t *testing.T) {
	addr := startAgent(t, "--token", "s3cret").URL()
	ctx := ctxT(t)
	anon, err := client.New(addr)
	require.NoError(t, err)
	_, err = anon.Scopes(ctx)
	require.ErrorIs(t, err, client.ErrUnauthorized)

	c, err := client.New(addr, client.WithToken("s3cret"))
	require.NoError(t, err)
	require.NoError(t, c.Ready(ctx))
	_, err = c.Groups(ctx, "invented")
	require.ErrorIs(t, err, client.ErrNotFound, "reads create no scope")

	m, err := c.Join(ctx, "default", "/svc/db", "db-1", client.JoinOptions{Meta: map[string]string{"addr": "10.0.0.7:5432"}})
	require.NoError(t, err)
	require.Equal(t, client.Membership{Group: "/svc/db", Member: "db-1", Count: 1}, m)
	page, err := c.Members(ctx, "default", "/svc/db", client.MembersOptions{})
	require.NoError(t, err)
	require.Len(t, page.Members, 1)
	require.Equal(t, "solo", page.Members[0].Node)
	require.Equal(t, "10.0.0.7:5432", page.Members[0].Meta["addr"])

	_, err = c.SetMeta(ctx, "default", "/svc/db", "db-1", nil)
	require.NoError(t, err)
	_, picked, err := c.Pick(ctx, "default", "/svc/db", client.Closest)
	require.NoError(t, err)
	require.Equal(t, "db-1", picked.ID)
	require.Empty(t, picked.Meta, "the metadata was cleared")

	for i := range 5 {
		_, err := c.Join(ctx, "default", "/svc/web", fmt.Sprintf("w%d", i), client.JoinOptions{})
		require.NoError(t, err)
	}
	var ids []string
	for m, err := range c.AllMembers(ctx, "default", "/svc/web", client.MembersOptions{Limit: 2}) {
		require.NoError(t, err)
		ids = append(ids, m.ID)
	}
	require.Equal(t, []string{"w0", "w1", "w2", "w3", "w4"}, ids)
	groups, err := c.Groups(ctx, "default")
	require.NoError(t, err)
	require.Equal(t, []string{"/svc/db", "/svc/web"}, groups)
	scopes, err := c.Scopes(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"default"}, scopes)
	d, err := c.Digest(ctx, "default")
	require.NoError(t, err)
	require.Equal(t, client.Digest{Digest: d.Digest, Groups: 2, Members: 6}, d)

	_, err = c.Leave(ctx, "default", "/svc/db", "db-1")
	require.NoError(t, err)
	_, err = c.Leave(ctx, "default", "/svc/db", "db-1")
	require.ErrorIs(t, err, client.ErrNotFound)
	require.ErrorContains(t, err, "not a member")
	_, _, err = c.Pick(ctx, "default", "/svc/web", client.Strategy("nearest"))
	require.ErrorIs(t, err, client.ErrBadRequest)
}

func TestAgentLeasesKeepAndDropTheirMembers(t *testing.T) {
	c, err := client.New(startAgent(t).URL())
	require.NoError(t, err)
	ctx := ctxT(t)

	kept, err := c.Grant(ctx, time.Second)
	require.NoError(t, err)
	defer kept.Close()
	_, err = c.Join(ctx, "default", "/svc/w", "kept", client.JoinOptions{Lease: kept.ID})
	require.NoError(t, err)
	unkept, err := c.CreateLease(ctx, time.Second)
	require.NoError(t, err)
	_, err = c.Join(ctx, "default", "/svc/w", "unkept", client.JoinOptions{Lease: unkept.ID})
	require.NoError(t, err)
	shown, err := c.ShowLease(ctx, unkept.ID)
	require.NoError(t, err)
	require.Len(t, shown.Members, 1)

	events, err := c.Watch(ctx, "default", "/svc/w", client.WatchOptions{})
	require.NoError(t, err)
	ev := next(t, events)
	require.Equal(t, client.EventLeave, ev.Kind, "the unkept lease lapses")
	require.Equal(t, "unkept", ev.Member.ID)

	time.Sleep(1500 * time.Millisecond)
	require.Equal(t, []string{"kept"}, members(t, c, "/svc/w"), "the kept lease outlives its TTL")
	require.NoError(t, kept.Err())
	require.NoError(t, kept.Revoke(ctx))
	ev = next(t, events)
	require.Equal(t, client.EventLeave, ev.Kind, "a revoke takes the members at once")
	require.Equal(t, "kept", ev.Member.ID)
	_, err = c.KeepAliveLease(ctx, kept.ID)
	require.ErrorIs(t, err, client.ErrNotFound)
}

func TestAgentClusterThroughTheClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of cpgd processes")
	}
	cl, err := proctest.Start(proctest.Config{Nodes: 2, GossipProfile: "loopback"})
	require.NoError(t, err)
	defer cl.Close()
	a, err := client.New(cl.Nodes[0].API)
	require.NoError(t, err)
	b, err := client.New(cl.Nodes[1].API)
	require.NoError(t, err)
	ctx := ctxT(t)

	events, err := b.Watch(ctx, "default", "/svc/*", client.WatchOptions{})
	if err != nil {
		// The scope does not exist on b until a join reaches it.
		_, err = b.Join(ctx, "default", "/seed", "s", client.JoinOptions{})
		require.NoError(t, err)
		events, err = b.Watch(ctx, "default", "/svc/*", client.WatchOptions{})
	}
	require.NoError(t, err)
	_, err = a.Join(ctx, "default", "/svc/db", "db-1", client.JoinOptions{})
	require.NoError(t, err)
	ev := next(t, events)
	require.Equal(t, client.EventJoin, ev.Kind, "a remote join reaches the watch")
	require.Equal(t, cl.Nodes[0].Name, ev.Member.Node)
	require.False(t, ev.Applied.Before(ev.Member.Joined), "applied on b (%v) after it was made on a (%v), one clock", ev.Applied, ev.Member.Joined)

	page, err := b.Members(ctx, "default", "/svc/db", client.MembersOptions{Where: client.Remote})
	require.NoError(t, err)
	require.Equal(t, "db-1", page.Members[0].ID)

	nodes, err := b.Nodes(ctx)
	require.NoError(t, err)
	status := map[string]string{}
	for _, n := range nodes {
		status[n.Name] = n.Status
	}
	require.Equal(t, map[string]string{"n1": "alive", "n2": "alive"}, status)
	overlay, err := b.Overlay(ctx)
	require.NoError(t, err)
	require.Equal(t, "n2", overlay.Name)
	require.Len(t, overlay.Active, 1)
	require.Equal(t, "n1", overlay.Active[0].Name)

	nodeEvents, err := b.WatchNodes(ctx, client.WatchOptions{})
	require.NoError(t, err)
	seen := map[string]bool{}
	for ev := next(t, nodeEvents); ev.Kind != client.EventSynced; ev = next(t, nodeEvents) {
		require.Equal(t, client.EventNode, ev.Kind)
		seen[ev.Node.Name] = true
	}
	require.Equal(t, map[string]bool{"n1": true, "n2": true}, seen)
	require.NoError(t, cl.Nodes[0].Terminate(10*time.Second))
	for {
		ev := next(t, nodeEvents)
		if ev.Node.Name == "n1" && ev.Kind == client.EventLeft {
			break
		}
	}
}

// cutter is a TCP proxy to an address that can cut every connection it
// carries at once, as a network failure would.
type cutter struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	conns  []net.Conn
}

// newCutter listens at once; setTarget says where to forward.
func newCutter(t *testing.T) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &cutter{ln: ln}
	go c.serve()
	t.Cleanup(func() {
		ln.Close()
		c.cut()
	})
	return c
}

func (c *cutter) serve() {
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		target := c.target
		c.mu.Unlock()
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		c.conns = append(c.conns, in, out)
		c.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); out.Close() }()
		go func() { _, _ = io.Copy(in, out); in.Close() }()
	}
}

func (c *cutter) setTarget(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.target = addr
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

func TestAgentWatchResumesAcrossACutAndRelistsAfterARestart(t *testing.T) {
	proxy := newCutter(t)
	// The agent answers a proxy's Host only when told to.
	agent := startAgent(t, "--watch-heartbeat", "200ms", "--allowed-hosts", proxy.ln.Addr().String())
	proxy.setTarget(agent.addr)
	direct, err := client.New(agent.URL())
	require.NoError(t, err)
	watcher, err := client.New(proxy.ln.Addr().String())
	require.NoError(t, err)
	ctx := ctxT(t)
	joinAt := func(id string) {
		_, err := direct.Join(ctx, "default", "/svc/w", id, client.JoinOptions{})
		require.NoError(t, err)
	}

	joinAt("m0")
	var lost atomic.Int32
	events, err := watcher.Watch(ctx, "default", "/svc/*", client.WatchOptions{Snapshot: true,
		IdleTimeout: time.Second, OnError: func(error) { lost.Add(1) }})
	require.NoError(t, err)
	ev := next(t, events)
	require.Equal(t, client.EventMember, ev.Kind)
	require.Equal(t, "m0", ev.Member.ID)
	require.Equal(t, client.EventSynced, next(t, events).Kind)
	joinAt("m1")
	require.Equal(t, "m1", next(t, events).Member.ID)

	// A cut: the joins made meanwhile come once each after the resume,
	// with no reset.
	cutAt := time.Now()
	proxy.cut()
	joinAt("m2")
	joinAt("m3")
	for _, id := range []string{"m2", "m3"} {
		ev := next(t, events)
		require.Equal(t, client.EventJoin, ev.Kind, "resumed, not re-listed")
		require.Equal(t, id, ev.Member.ID)
	}
	t.Logf("from the cut to the last change resumed: %v", time.Since(cutAt).Round(time.Millisecond))
	require.Positive(t, lost.Load())

	// A restart: the new run cannot resume the old run's ids, so the
	// watch re-lists, and the registrations (durable) are all there.
	restartAt := time.Now()
	agent.restart()
	t.Logf("the agent restarted in %v", time.Since(restartAt).Round(time.Millisecond))
	ev = next(t, events)
	require.Equal(t, client.EventReset, ev.Kind)
	require.Contains(t, ev.Reason, "earlier run", "the agent's reason")
	var ids []string
	for ev := next(t, events); ev.Kind != client.EventSynced; ev = next(t, events) {
		require.Equal(t, client.EventMember, ev.Kind)
		ids = append(ids, ev.Member.ID)
	}
	t.Logf("from the restart to the re-listed members synced: %v", time.Since(restartAt).Round(time.Millisecond))
	slices.Sort(ids)
	require.Equal(t, []string{"m0", "m1", "m2", "m3"}, ids)
	joinAt("m4")
	require.Equal(t, "m4", next(t, events).Member.ID)
}
