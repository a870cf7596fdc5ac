package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Two real agents: a watch on one sees the joins and leaves made through
// the other and, reconnected with Last-Event-ID, exactly those made while
// it was away; the node stream of one sees the other hang (SIGSTOP) until
// it is ruled dead, and come back (SIGCONT).
func TestAgentsWatchRemoteChangesAndNodeStatus(t *testing.T) {
	c := startAgents(t, 2)
	n1, n2 := c.Nodes[0], c.Nodes[1]

	resp, s := openWatch(t, n2.API+"/v1/scopes/default/watch?pattern=/svc/*")
	joinVia(t, n1.API, "/svc/db", "db-1", "")
	ev := s.nextEvent(t)
	require.Equal(t, "join /svc/db db-1", ev.summary(t))
	require.Equal(t, n1.Name, ev.decode(t).Member.Node, "a change made on the other node")
	resp.Body.Close()

	joinVia(t, n1.API, "/svc/db", "db-2", "")
	code, out := call(t, "POST", n1.API+"/v1/scopes/default/leave", `{"group":"/svc/db","member":"db-1"}`)
	require.Equal(t, 200, code, out)
	waitMembers(t, c.Nodes, "/svc/db", []string{n1.Name + "/db-2"}, 10*time.Second, "the changes made while the watch was away reach n2")
	_, s = openWatch(t, n2.API+"/v1/scopes/default/watch?pattern=/svc/*", "Last-Event-ID", ev.id)
	require.Equal(t, "join /svc/db db-2", s.nextEvent(t).summary(t))
	require.Equal(t, "leave /svc/db db-1", s.nextEvent(t).summary(t))

	_, nodes := openWatch(t, n1.API+"/v1/nodes/watch")
	for ev := nodes.nextEvent(t); ev.kind != "synced"; ev = nodes.nextEvent(t) {
		require.Equal(t, "node", ev.kind)
	}
	// next returns the next status event about n2, skipping heartbeats.
	next := func() (string, nodeJSON) {
		for {
			ev := nodes.nextEvent(t)
			var n nodeJSON
			require.NoError(t, json.Unmarshal([]byte(ev.data), &n), ev.data)
			if n.Name == n2.Name {
				return ev.kind, n
			}
		}
	}
	require.NoError(t, n2.Stop())
	hung := time.Now()
	var kinds []string
	for {
		kind, n := next()
		kinds = append(kinds, kind)
		if kind == "dead" {
			require.Equal(t, "dead", n.Status)
			break
		}
	}
	t.Logf("n1's stream said %v about the hung n2 within %v", kinds, time.Since(hung).Round(time.Millisecond))
	require.NoError(t, n2.Continue())
	kind, n := next()
	require.Contains(t, []string{"up", "refuted"}, kind)
	require.Equal(t, "alive", n.Status)
	require.NotEmpty(t, n.HTTP, "the event carries the node as GET /v1/nodes shows it")
}
