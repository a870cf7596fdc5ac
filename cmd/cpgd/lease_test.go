package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The lease calls of the API: grant, show with its members, keep alive,
// revoke (its members leave), and the refusals.
func TestLeaseAPI(t *testing.T) {
	base := startAgent(t, "--log-level", "warn")
	code, out := call(t, "POST", base+"/v1/leases", `{"ttl":"10s"}`)
	require.Equal(t, 200, code, out)
	id := out["id"].(string)
	require.Equal(t, "10s", out["ttl"])
	expires, err := time.Parse(time.RFC3339Nano, out["expires"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(10*time.Second), expires, 2*time.Second)

	join := fmt.Sprintf(`{"group":"/svc/db","member":"db-1","lease":%q}`, id)
	code, out = call(t, "POST", base+"/v1/scopes/default/join", join)
	require.Equal(t, 200, code, out)
	code, out = call(t, "POST", base+"/v1/scopes/default/join", join)
	require.Equal(t, 200, code, out)
	require.Equal(t, float64(2), out["count"])
	code, out = call(t, "POST", base+"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-2"}`)
	require.Equal(t, 200, code, out)

	code, out = call(t, "GET", base+"/v1/leases/"+id, "")
	require.Equal(t, 200, code, out)
	require.Equal(t, []any{map[string]any{"scope": "default", "group": "/svc/db", "member": "db-1", "count": float64(2)}}, out["members"])

	time.Sleep(10 * time.Millisecond)
	code, out = call(t, "POST", base+"/v1/leases/"+id+"/keepalive", "")
	require.Equal(t, 200, code, out)
	renewed, err := time.Parse(time.RFC3339Nano, out["expires"].(string))
	require.NoError(t, err)
	require.True(t, renewed.After(expires), "keepalive moves the deadline: %v then %v", expires, renewed)

	code, out = call(t, "DELETE", base+"/v1/leases/"+id, "")
	require.Equal(t, 200, code, out)
	require.Equal(t, float64(2), out["left"])
	_, out = call(t, "GET", base+"/v1/scopes/default/members?name=/svc/db", "")
	members := out["members"].([]any)
	require.Len(t, members, 1, "only the member joined without the lease stays")
	require.Equal(t, "db-2", members[0].(map[string]any)["id"])

	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/v1/leases", `{"ttl":"500ms"}`, 400},
		{"POST", "/v1/leases", `{"ttl":"25h"}`, 400},
		{"POST", "/v1/leases", `{"ttl":"soon"}`, 400},
		{"POST", "/v1/leases", `{"ttl":10}`, 400},
		{"POST", "/v1/leases", `{"ttl":"10s","extra":1}`, 400},
		{"GET", "/v1/leases/" + id, "", 404},
		{"POST", "/v1/leases/" + id + "/keepalive", "", 404},
		{"DELETE", "/v1/leases/" + id, "", 404},
		{"GET", "/v1/leases/not-a-lease", "", 404},
		{"POST", "/v1/scopes/default/join", fmt.Sprintf(`{"group":"/svc/db","member":"db-3","lease":%q}`, id), 404},
		{"POST", "/v1/scopes/default/join", `{"group":"/svc/db","member":"db-3","lease":"../../etc"}`, 404},
	} {
		code, out := call(t, c.method, base+c.path, c.body)
		require.Equal(t, c.code, code, "%s %s %s: %v", c.method, c.path, c.body, out)
		require.NotEmpty(t, out["error"], "%s %s: a JSON error", c.method, c.path)
	}
	_, out = call(t, "GET", base+"/v1/scopes/default/members?name=/svc/db", "")
	require.Len(t, out["members"], 1, "a refused join changed nothing")
}

// A lease not kept alive lapses on its own, and its members leave.
func TestLeaseLapsesInTheAgent(t *testing.T) {
	base := startAgent(t, "--log-level", "warn")
	_, out := call(t, "POST", base+"/v1/leases", `{"ttl":"1s"}`)
	id := out["id"].(string)
	code, out := call(t, "POST", base+"/v1/scopes/default/join", fmt.Sprintf(`{"group":"/svc/db","member":"db-1","lease":%q}`, id))
	require.Equal(t, 200, code, out)
	require.Eventually(t, func() bool {
		code, _ := call(t, "GET", base+"/v1/scopes/default/members?name=/svc/db", "")
		return code == 404
	}, 5*time.Second, 20*time.Millisecond)
	code, _ = call(t, "GET", base+"/v1/leases/"+id, "")
	require.Equal(t, 404, code)
}

// After the agent stops (even gracefully) and starts again on the same
// data dir, its registrations are back; readyz says ready only then.
func TestAgentRestartKeepsRegistrations(t *testing.T) {
	dir := t.TempDir()
	first := startAgentUntil(t, "--data-dir", dir, "--log-level", "warn")
	code, out := call(t, "POST", first.base+"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-1","meta":{"zone":"eu"}}`)
	require.Equal(t, 200, code, out)
	first.stop()

	second := startAgent(t, "--data-dir", dir, "--log-level", "warn")
	code, _ = call(t, "GET", second+"/readyz", "")
	require.Equal(t, 200, code)
	code, out = call(t, "GET", second+"/v1/scopes/default/members?name=/svc/db", "")
	require.Equal(t, 200, code, out)
	m := out["members"].([]any)[0].(map[string]any)
	require.Equal(t, "db-1", m["id"])
	require.Equal(t, map[string]any{"zone": "eu"}, m["meta"])
}

// stoppableAgent is an agent a test stops before it ends.
type stoppableAgent struct {
	base string
	stop func()
}

// startAgentUntil runs an agent (with startAgent's arguments) that the
// test stops with stop, as SIGTERM would.
func startAgentUntil(t *testing.T, extra ...string) stoppableAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args := append([]string{"agent", "--name", "t1", "--http", "127.0.0.1:0"}, extra...)
	go func() { done <- run(ctx, args, ready) }()
	select {
	case addr := <-ready:
		var once sync.Once
		stop := func() { once.Do(func() { cancel(); require.NoError(t, <-done) }) }
		t.Cleanup(stop)
		return stoppableAgent{base: "http://" + addr, stop: stop}
	case err := <-done:
		cancel()
		t.Fatalf("agent did not start: %v", err)
		return stoppableAgent{}
	}
}
