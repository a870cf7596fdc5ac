package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpggo/cpg/client"
	"github.com/cpggo/cpg/client/clienttest"
	"github.com/stretchr/testify/require"
)

// runCLI runs one command line in-process and returns its exit code and
// outputs.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = cli(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustCLI runs a command line that must succeed and returns its output.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	require.Equal(t, 0, code, "cpgd %s: %s", strings.Join(args, " "), errOut)
	return out
}

func TestCLIVerbsAgainstAnAgent(t *testing.T) {
	addr := startAgent(t, "--token", "s3cret")
	t.Setenv("CPGD_TOKEN", "s3cret")
	a := "--addr=" + addr

	require.Equal(t, "db-1 joined /svc/db (joins: 1)\n", mustCLI(t, "join", a, "/svc/db", "db-1", "addr=10.0.0.7:5432", "zone=b"))
	// Flags may follow the arguments.
	out := mustCLI(t, "join", "/svc/db", "db-2", a, "--json")
	var m client.Membership
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	require.Equal(t, client.Membership{Group: "/svc/db", Member: "db-2", Count: 1}, m)

	out = mustCLI(t, "members", a, "/svc/db")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, `^MEMBER\s+NODE\s+JOINS\s+JOINED\s+META$`, lines[0])
	require.Regexp(t, `^db-1\s+t1\s+1\s+\S+\s+addr=10\.0\.0\.7:5432 zone=b$`, lines[1])
	require.Regexp(t, `^db-2\s+t1\s+1\s+\S+\s*$`, lines[2])

	var page client.MembersPage
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, "members", a, "--json", "--limit", "1", "/svc/db")), &page))
	require.Len(t, page.Members, 1)
	require.NotEmpty(t, page.Next)
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, "members", a, "--json", "--limit", "1", "--after", page.Next, "/svc/db")), &page))
	require.Equal(t, "db-2", page.Members[0].ID)
	require.NoError(t, json.Unmarshal([]byte(mustCLI(t, "members", a, "--json", "/svc/db")), &page))
	require.Equal(t, "/svc/db", page.Group)
	require.Len(t, page.Members, 2)

	require.Equal(t, "cleared the metadata of db-1 in /svc/db\n", mustCLI(t, "meta", a, "/svc/db", "db-1"))
	require.Regexp(t, `(?m)^db-2\s+t1\s+1\s`, mustCLI(t, "pick", a, "--strategy", "oldest", "--exclude", "db-1", "/svc/db"))
	require.Equal(t, "default\n", mustCLI(t, "scopes", a))
	require.Equal(t, "/svc/db\n", mustCLI(t, "groups", a))
	require.Regexp(t, `(?m)^groups\s+1\nmembers\s+2\n$`, mustCLI(t, "digest", a))
	require.Regexp(t, `^NODE\s+STATUS`, mustCLI(t, "nodes", a))
	require.Regexp(t, `^node t1\nVIEW\s+PEER\s+ADDR\n$`, mustCLI(t, "overlay", a))

	require.Equal(t, "db-1 left /svc/db\n", mustCLI(t, "leave", a, "/svc/db", "db-1"))
	code, stdout, stderr := runCLI(t, "leave", a, "/svc/db", "db-1")
	require.Equal(t, 1, code, "an error of the agent exits 1")
	require.Empty(t, stdout)
	require.Contains(t, stderr, "404")
	require.Contains(t, stderr, "not a member", "with the agent's message")

	code, _, stderr = runCLI(t, "groups", a, "--token", "wrong")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "401")
}

func TestCLICommandLines(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		out  string // in stdout (code 0) or stderr
	}{
		{[]string{"join", "--help"}, 0, "usage: cpgd join [flags] GROUP MEMBER [KEY=VALUE...]"},
		{[]string{"members", "-h"}, 0, "-limit"},
		{[]string{"lease", "--help"}, 0, "grant|keepalive|revoke|show"},
		{[]string{"lease", "grant", "--help"}, 0, "--keep"[1:]},
		{[]string{"join", "/svc/db"}, 2, "want GROUP MEMBER"},
		{[]string{"leave", "/g", "m", "extra"}, 2, `unexpected arguments ["extra"]`},
		{[]string{"join", "/g", "m", "novalue"}, 2, `metadata "novalue": want KEY=VALUE`},
		{[]string{"join", "/g", "m", "=v"}, 2, "want KEY=VALUE"},
		{[]string{"members", "--where", "nearby", "/g"}, 2, "want local or remote"},
		{[]string{"pick", "--strategy", "nearest", "/g"}, 2, "--strategy"},
		{[]string{"scopes", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"lease"}, 2, "want a subverb"},
		{[]string{"lease", "renew", "x"}, 2, `unknown subverb "renew"`},
		{[]string{"lease", "grant", "soon"}, 2, `TTL "soon"`},
		{[]string{"lease", "grant", "0s"}, 2, `TTL "0s"`},
		{[]string{"groups", "--addr", "ftp://x"}, 2, "--addr"},
		{[]string{"frobnicate"}, 2, `unknown verb "frobnicate"`},
	} {
		code, stdout, stderr := runCLI(t, c.args...)
		require.Equal(t, c.code, code, "cpgd %s: %s%s", strings.Join(c.args, " "), stdout, stderr)
		if c.code == 0 {
			require.Contains(t, stdout, c.out, c.args)
		} else {
			require.Contains(t, stderr, c.out, c.args)
		}
	}
}

func TestCLIArgumentsAfterDoubleDashAreNotFlags(t *testing.T) {
	srv := clienttest.NewServer(clienttest.Options{})
	defer srv.Close()
	require.Equal(t, "--odd joined /g (joins: 1)\n", mustCLI(t, "join", "--addr", srv.URL, "--", "/g", "--odd"))
}

func TestCLIAgentUnreachableExits1(t *testing.T) {
	srv := clienttest.NewServer(clienttest.Options{})
	addr := srv.URL
	srv.Close()
	code, _, stderr := runCLI(t, "scopes", "--addr", addr)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "connection refused")
}

// lockedBuffer is a bytes.Buffer a running verb writes while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startCLI runs a long-lived verb (watch, lease grant --keep) until the
// returned stop is called; stop returns its exit code.
func startCLI(t *testing.T, args ...string) (out *lockedBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &lockedBuffer{}
	var errOut lockedBuffer
	done := make(chan int, 1)
	go func() { done <- cli(ctx, args, out, &errOut) }()
	stopped := false
	var code int
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			select {
			case code = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("cpgd %s did not end when interrupted", strings.Join(args, " "))
			}
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return out, stop
}

func TestCLIWatchPrintsOneLinePerEventUntilInterrupted(t *testing.T) {
	addr := startAgent(t)
	mustCLI(t, "join", "--addr", addr, "/svc/web", "w0")
	out, stop := startCLI(t, "watch", "--addr", addr, "/svc/*")
	// The watch is open once a join made now reaches it; each probe is a
	// member of its own, so one made before the stream opened counts no
	// join twice.
	probes := 0
	require.Eventually(t, func() bool {
		probes++
		probe := fmt.Sprintf("probe-%d", probes)
		mustCLI(t, "join", "--addr", addr, "/svc/probe", probe)
		return strings.Contains(out.String(), "join /svc/probe "+probe)
	}, 5*time.Second, 50*time.Millisecond)
	for i := 1; i <= probes; i++ {
		mustCLI(t, "leave", "--addr", addr, "/svc/probe", fmt.Sprintf("probe-%d", i))
	}
	mustCLI(t, "join", "--addr", addr, "/svc/web", "w1", "port=80")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "join /svc/web w1") },
		5*time.Second, 10*time.Millisecond)
	mustCLI(t, "leave", "--addr", addr, "/svc/web", "w0")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "leave /svc/web w0 node=t1 joins=0\n") },
		5*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, stop(), "Ctrl-C ends a watch with status 0")
	require.Contains(t, out.String(), "join /svc/web w1 node=t1 joins=1 port=80\n")

	jsonOut, stop := startCLI(t, "watch", "--addr", addr, "--json", "--snapshot", "/svc/*")
	// Join w2 once the snapshot is over, so it comes as a change.
	require.Eventually(t, func() bool { return strings.Contains(jsonOut.String(), `"synced"`) },
		5*time.Second, 10*time.Millisecond)
	mustCLI(t, "join", "--addr", addr, "/svc/web", "w2")
	require.Eventually(t, func() bool { return strings.Contains(jsonOut.String(), `"id":"w2"`) },
		5*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, stop())
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(jsonOut.String()), "\n") {
		var ev struct {
			Kind   string
			Member struct{ ID string }
		}
		require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
		kinds = append(kinds, ev.Kind+" "+ev.Member.ID)
	}
	require.Equal(t, []string{"member w1", "synced ", "join w2"}, kinds[:3], "the snapshot, then the changes")
}

func TestCLILeaseVerbs(t *testing.T) {
	addr := startAgent(t)
	a := "--addr=" + addr
	id := strings.TrimSpace(mustCLI(t, "lease", "grant", a, "1m"))
	require.NotEmpty(t, id)
	mustCLI(t, "join", a, "--lease", id, "/svc/w", "w1")
	require.Regexp(t, `^lease `+id+`: ttl 1m0s, expires \S+\n$`, mustCLI(t, "lease", "keepalive", a, id))
	shown := mustCLI(t, "lease", "show", a, id)
	require.Regexp(t, `(?m)^default\s+/svc/w\s+w1\s+1$`, shown)
	require.Equal(t, "revoked "+id+"\n", mustCLI(t, "lease", "revoke", a, id))
	code, _, stderr := runCLI(t, "members", a, "/svc/w")
	require.Equal(t, 1, code, "the lease's member left")
	require.Contains(t, stderr, "404")
	code, _, stderr = runCLI(t, "lease", "keepalive", a, id)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "404")

	// --keep holds the lease past its TTL, and revokes it when
	// interrupted.
	out, stop := startCLI(t, "lease", "grant", a, "--keep", "--json", "1s")
	var info client.LeaseInfo
	require.Eventually(t, func() bool { return json.Unmarshal([]byte(out.String()), &info) == nil }, 5*time.Second, 10*time.Millisecond)
	mustCLI(t, "join", a, "--lease", info.ID, "/svc/w", "w2")
	time.Sleep(2 * time.Second)
	require.Contains(t, mustCLI(t, "members", a, "/svc/w"), "w2", "kept alive past its TTL")
	require.Equal(t, 0, stop())
	code, _, _ = runCLI(t, "members", a, "/svc/w")
	require.Equal(t, 1, code, "revoked when interrupted")
}

func TestCLINodesWatch(t *testing.T) {
	srv := clienttest.NewServer(clienttest.Options{})
	defer srv.Close()
	srv.SetNodes(clienttest.Node{Name: "a", Status: "alive", Incarnation: 3})
	out, stop := startCLI(t, "nodes", "--watch", "--addr", srv.URL)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "node a incarnation=3") }, 5*time.Second, 10*time.Millisecond)
	srv.NodeChange("suspect", clienttest.Node{Name: "a", Status: "suspect", Incarnation: 3, RTTms: 2})
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "suspect a incarnation=3 rtt=2.00ms") }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, stop())
}
