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

// Against a real agent, the example prints each join and leave as it
// happens, and nothing of what came before it started.
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

	watchCtx, stopWatch := context.WithCancel(ctx)
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(watchCtx, config{addr: agent.API, scope: "default", pattern: "/svc/*"}, w)
		w.Close()
	}()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var seen []string
	expect := func(pattern string) {
		t.Helper()
		re := regexp.MustCompile(pattern)
		for {
			select {
			case line, ok := <-lines:
				require.True(t, ok, "the output ended before a line matching %q; it was:\n%q", pattern, seen)
				seen = append(seen, line)
				if re.MatchString(line) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no line matching %q; the output was:\n%q", pattern, seen)
			}
		}
	}
	const at = `^\d\d:\d\d:\d\d\.\d{3} `
	expect(`^watching /svc/\* in scope default at ` + regexp.QuoteMeta(agent.API) + `$`)

	_, err = c.Join(ctx, "default", "/svc/db", "db-1", client.JoinOptions{Meta: map[string]string{"addr": "10.0.0.7:5432", "zone": "eu"}})
	require.NoError(t, err)
	expect(at + `join   /svc/db db-1 on n1, count 1, addr=10\.0\.0\.7:5432 zone=eu$`)
	require.NotContains(t, strings.Join(seen, "\n"), "db-0", "a watch shows changes after it started")
	_, err = c.Leave(ctx, "default", "/svc/db", "db-1")
	require.NoError(t, err)
	expect(at + `leave  /svc/db db-1 on n1, count 0`)

	stopWatch()
	for range lines {
	}
	require.NoError(t, <-done)
}
