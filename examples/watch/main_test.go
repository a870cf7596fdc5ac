package main

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cpggo/cpg/client"
	"github.com/cpggo/cpg/internal/proctest"
	"github.com/stretchr/testify/require"
)

// at is the time that starts every event line.
const at = `^\d\d:\d\d:\d\d\.\d{3} `

// Against a real agent, the example prints each join and leave as it
// happens; with --snapshot, the members already there first.
func TestWatchPrintsJoinsAndLeaves(t *testing.T) {
	cluster, err := proctest.Start(proctest.Config{Nodes: 1, GossipProfile: "loopback"})
	require.NoError(t, err)
	defer cluster.Close()
	agent := cluster.Nodes[0]
	c, err := client.New(agent.API)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err = c.Join(ctx, "default", "/svc/db", "db-0", client.JoinOptions{})
	require.NoError(t, err)

	changes := startWatch(ctx, t, config{addr: agent.API, scope: "default", pattern: "/svc/*"})
	changes.expect(`^watching /svc/\* in scope default at ` + regexp.QuoteMeta(agent.API) + `$`)
	_, err = c.Join(ctx, "default", "/svc/db", "db-1", client.JoinOptions{Meta: map[string]string{"addr": "10.0.0.7:5432", "zone": "eu"}})
	require.NoError(t, err)
	changes.expect(at + `join   /svc/db db-1 on n1, count 1, addr=10\.0\.0\.7:5432 zone=eu$`)
	require.NotContains(t, changes.output(), "db-0", "a watch shows the changes after it started")
	_, err = c.Leave(ctx, "default", "/svc/db", "db-1")
	require.NoError(t, err)
	changes.expect(at + `leave  /svc/db db-1 on n1, count 0`)
	changes.stop()

	snapshot := startWatch(ctx, t, config{addr: agent.API, scope: "default", pattern: "/svc/*", snapshot: true})
	snapshot.expect(at + `member /svc/db db-0 on n1, count 1$`)
	snapshot.expect(at + `synced: changes follow$`)
	_, err = c.Join(ctx, "default", "/svc/web", "web-1", client.JoinOptions{})
	require.NoError(t, err)
	snapshot.expect(at + `join   /svc/web web-1 on n1, count 1$`)
	snapshot.stop()
}

// watchRun is the example running in the test's process, and what it
// printed so far.
type watchRun struct {
	t     *testing.T
	ctx   context.Context
	lines chan string
	seen  []string
	stop  func()
}

func startWatch(ctx context.Context, t *testing.T, cfg config) *watchRun {
	watchCtx, cancel := context.WithCancel(ctx)
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(watchCtx, cfg, w)
		w.Close()
	}()
	wr := &watchRun{t: t, ctx: ctx, lines: make(chan string, 64)}
	go func() {
		defer close(wr.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			wr.lines <- sc.Text()
		}
	}()
	stopped := false
	wr.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		for range wr.lines {
		}
		require.NoError(t, <-done)
	}
	t.Cleanup(wr.stop)
	return wr
}

// expect reads the output up to a line that matches pattern.
func (wr *watchRun) expect(pattern string) {
	wr.t.Helper()
	re := regexp.MustCompile(pattern)
	for {
		select {
		case line, ok := <-wr.lines:
			require.True(wr.t, ok, "the output ended before a line matching %q; it was:\n%s", pattern, wr.output())
			wr.seen = append(wr.seen, line)
			if re.MatchString(line) {
				return
			}
		case <-wr.ctx.Done():
			wr.t.Fatalf("no line matching %q; the output was:\n%s", pattern, wr.output())
		}
	}
}

func (wr *watchRun) output() string { return strings.Join(wr.seen, "\n") }
