package client_test

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cpggo/cpg/client"
	"github.com/cpggo/cpg/internal/proctest"
	"github.com/stretchr/testify/require"
)

// startAgent runs a real cpgd agent on its own, on a free loopback port,
// until the test ends, and returns its API's URL.
func startAgent(t *testing.T, args ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs cpgd")
	}
	bin, err := proctest.Binary()
	require.NoError(t, err)
	args = append([]string{"agent", "--name", "solo", "--http", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	waited := make(chan error, 1)
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, `msg="cpgd agent started"`) {
				continue
			}
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "http="); ok {
					started <- v
				}
			}
		}
		waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-waited:
			require.NoError(t, err, "the agent exits 0 on SIGTERM")
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the agent did not stop within 10 s of SIGTERM")
		}
	})
	select {
	case addr := <-started:
		return addr
	case err := <-waited:
		t.Fatalf("the agent exited at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not start within 30 s")
	}
	return ""
}

func TestAgentAnswersEveryRegistryCall(t *testing.T) {
	addr := startAgent(t, "--token", "s3cret")
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
	c, err := client.New(startAgent(t))
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
	require.Len(t, overlay.Active, 1)
	require.Equal(t, "n1", overlay.Active[0].Name)

	nodeEvents, err := b.WatchNodes(ctx, client.WatchOptions{})
	if err != nil {
		t.Logf("node watch not served by this agent: %v", err)
		return
	}
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
