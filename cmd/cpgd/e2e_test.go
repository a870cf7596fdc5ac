package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cpggo/cpg/internal/proctest"
)

// memberIDs lists "node/id" of the members of group as base sees them
// (none when the group is unknown).
func memberIDs(t *testing.T, base, group string) []string {
	t.Helper()
	code, out := call(t, "GET", base+"/v1/scopes/default/members?name="+group, "")
	if code == 404 {
		return nil
	}
	require.Equal(t, 200, code, out)
	var ids []string
	for _, m := range out["members"].([]any) {
		m := m.(map[string]any)
		ids = append(ids, m["node"].(string)+"/"+m["id"].(string))
	}
	slices.Sort(ids)
	return ids
}

// waitMembers waits until every node lists exactly want in group.
func waitMembers(t *testing.T, nodes []*proctest.Node, group string, want []string, within time.Duration, why string) time.Duration {
	t.Helper()
	start := time.Now()
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if !slices.Equal(memberIDs(t, n.API, group), want) {
				return false
			}
		}
		return true
	}, within, 10*time.Millisecond, "%s: want %v", why, want)
	return time.Since(start)
}

func grantLease(t *testing.T, base, ttl string) string {
	t.Helper()
	code, out := call(t, "POST", base+"/v1/leases", fmt.Sprintf(`{"ttl":%q}`, ttl))
	require.Equal(t, 200, code, out)
	return out["id"].(string)
}

func joinVia(t *testing.T, base, group, member, lease string) {
	t.Helper()
	body := fmt.Sprintf(`{"group":%q,"member":%q}`, group, member)
	if lease != "" {
		body = fmt.Sprintf(`{"group":%q,"member":%q,"lease":%q}`, group, member, lease)
	}
	code, out := call(t, "POST", base+"/v1/scopes/default/join", body)
	require.Equal(t, 200, code, out)
}

// startAgents starts count real agents on loopback, each joining the
// first, and shows their logs if the test fails. Under -short it skips.
func startAgents(t *testing.T, count int) *proctest.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real agents")
	}
	c, err := proctest.Start(proctest.Config{Nodes: count, GossipProfile: "loopback", Args: []string{"--log-level", "info"}})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("log of %s:\n%s", n.Name, n.LogTail())
			}
		}
		c.Close()
	})
	return c
}

// Three real agents on loopback: a join through one is seen through the
// others; a lease not kept alive lapses and its members vanish everywhere;
// kill -9 and a restart on the same data dir bring back the acknowledged
// registrations but not those of a lease that lapsed meanwhile; SIGTERM
// exits 0 and the others drop the agent's members at once.
func TestThreeAgentsEndToEnd(t *testing.T) {
	c := startAgents(t, 3)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]

	joinVia(t, n1.API, "/svc/db", "db-1", "")
	waitMembers(t, c.Nodes, "/svc/db", []string{"n1/db-1"}, 10*time.Second, "a join through n1 is seen everywhere")
	// The count a join answers is this node's member's: n1's db-1 is
	// another member.
	code, out := call(t, "POST", n2.API+"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-1"}`)
	require.Equal(t, 200, code, out)
	require.Equal(t, float64(1), out["count"], "n2's db-1 joined once")
	waitMembers(t, c.Nodes, "/svc/db", []string{"n1/db-1", "n2/db-1"}, 10*time.Second, "both db-1 are seen everywhere")

	lease := grantLease(t, n2.API, "1s")
	joinVia(t, n2.API, "/svc/leased", "w-1", lease)
	joinVia(t, n2.API, "/svc/leased", "w-2", lease)
	waitMembers(t, c.Nodes, "/svc/leased", []string{"n2/w-1", "n2/w-2"}, 10*time.Second, "leased joins are seen everywhere")
	took := waitMembers(t, c.Nodes, "/svc/leased", nil, 10*time.Second, "a lease not kept alive lapses everywhere")
	t.Logf("the 1 s lease's members were gone everywhere %v after they were seen", took.Round(time.Millisecond))

	long := grantLease(t, n3.API, "1m")
	short := grantLease(t, n3.API, "1s")
	joinVia(t, n3.API, "/svc/api", "plain", "")
	joinVia(t, n3.API, "/svc/api", "plain", "")
	joinVia(t, n3.API, "/svc/api", "long", long)
	joinVia(t, n3.API, "/svc/api", "short", short)
	waitMembers(t, c.Nodes, "/svc/api", []string{"n3/long", "n3/plain", "n3/short"}, 10*time.Second, "n3's joins are seen everywhere")
	require.NoError(t, n3.Kill())
	waitMembers(t, c.Others(n3), "/svc/api", nil, 10*time.Second, "a killed agent's members are purged")
	// The short lease lapses while n3 is down.
	time.Sleep(1200 * time.Millisecond)
	require.NoError(t, c.Restart(n3))
	require.NoError(t, c.WaitAllAlive(c.Nodes, 20*time.Second))
	waitMembers(t, c.Nodes, "/svc/api", []string{"n3/long", "n3/plain"}, 10*time.Second, "n3's registrations come back after kill -9, but not the lapsed lease's")
	code, out = call(t, "GET", n3.API+"/v1/scopes/default/members?name=/svc/api", "")
	require.Equal(t, 200, code)
	for _, m := range out["members"].([]any) {
		if m := m.(map[string]any); m["id"] == "plain" {
			require.Equal(t, float64(2), m["count"], "the join count comes back too")
		}
	}
	code, _ = call(t, "POST", n3.API+"/v1/leases/"+long+"/keepalive", "")
	require.Equal(t, 200, code, "the live lease came back with its joins")

	joinVia(t, n2.API, "/svc/cache", "c-1", "")
	waitMembers(t, c.Nodes, "/svc/cache", []string{"n2/c-1"}, 10*time.Second, "n2's join is seen everywhere")
	stopped := time.Now()
	require.NoError(t, n2.Terminate(10*time.Second), "SIGTERM exits 0")
	exited := time.Since(stopped)
	took = waitMembers(t, c.Others(n2), "/svc/cache", nil, 2*time.Second, "the others drop a gracefully stopped agent's members at once")
	t.Logf("SIGTERM: exit after %v, members gone from the others %v later", exited.Round(time.Millisecond), took.Round(time.Millisecond))
}

// Joins keep coming from 16 clients when the agent is killed with
// SIGKILL: after a restart on the same data dir, every join that was
// answered 200 is there (a join cut off unanswered may or may not be).
func TestAcknowledgedJoinsSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent")
	}
	c, err := proctest.Start(proctest.Config{Nodes: 1, GossipProfile: "loopback"})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	n := c.Nodes[0]
	client := &http.Client{Timeout: 5 * time.Second}
	var mu sync.Mutex
	acked := make(map[string]bool)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				member := fmt.Sprintf("m-%d-%d", w, i)
				resp, err := client.Post(n.API+"/v1/scopes/default/join", "application/json",
					strings.NewReader(fmt.Sprintf(`{"group":"/svc/load","member":%q}`, member)))
				if err != nil {
					return // the agent is gone
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[member] = true
					mu.Unlock()
				}
			}
		})
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 2000
	}, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, n.Kill())
	wg.Wait()
	require.NoError(t, c.Restart(n))
	back := make(map[string]bool)
	for _, id := range memberIDs(t, n.API, "/svc/load") {
		back[strings.TrimPrefix(id, n.Name+"/")] = true
	}
	var lost []string
	for m := range acked {
		if !back[m] {
			lost = append(lost, m)
		}
	}
	t.Logf("%d joins acknowledged before kill -9, %d members after the restart", len(acked), len(back))
	require.Empty(t, lost, "acknowledged joins lost")
}
