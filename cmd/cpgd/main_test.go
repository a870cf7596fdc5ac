package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cpggo/cpg/registry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startAgent runs the agent on a free loopback port until the test ends.
func startAgent(t *testing.T, extra ...string) string {
	t.Helper()
	base, _ := startStoppableAgent(t, extra...)
	return base
}

// startStoppableAgent is startAgent with a stop that makes the agent leave
// before the test ends; it returns the agent's exit error.
func startStoppableAgent(t *testing.T, extra ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	// Each agent gets a data dir of its own; a later --data-dir in extra
	// wins, for a test that restarts an agent on the same one.
	args := append([]string{"agent", "--name", "t1", "--http", "127.0.0.1:0", "--data-dir", t.TempDir()}, extra...)
	go func() { done <- run(ctx, args, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	}
	var once sync.Once
	var exit error
	stop := func() error {
		once.Do(func() {
			cancel()
			exit = <-done
		})
		return exit
	}
	t.Cleanup(func() { require.NoError(t, stop()) })
	return "http://" + addr, stop
}

func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func TestAgentServesTheRegistry(t *testing.T) {
	base := startAgent(t)

	code, out := call(t, "POST", base+"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-1","meta":{"addr":"10.0.0.7:5432"}}`)
	require.Equal(t, 200, code, out)
	require.Equal(t, float64(1), out["count"])

	code, out = call(t, "GET", base+"/v1/scopes/default/members?name=/svc/db", "")
	require.Equal(t, 200, code, out)
	require.Equal(t, "/svc/db", out["group"])
	members := out["members"].([]any)
	require.Len(t, members, 1)
	m := members[0].(map[string]any)
	require.Equal(t, "db-1", m["id"])
	require.Equal(t, "t1", m["node"])
	require.Equal(t, "10.0.0.7:5432", m["meta"].(map[string]any)["addr"])

	code, out = call(t, "GET", base+"/v1/scopes/default/pick?name=/svc/db&strategy=oldest", "")
	require.Equal(t, 200, code, out)
	require.Equal(t, "db-1", out["member"].(map[string]any)["id"])

	code, out = call(t, "GET", base+"/v1/scopes/default/groups", "")
	require.Equal(t, 200, code)
	require.Equal(t, []any{"/svc/db"}, out["groups"])

	code, _ = call(t, "POST", base+"/v1/scopes/default/leave", `{"group":"/svc/db","member":"db-1"}`)
	require.Equal(t, 200, code)
	code, out = call(t, "POST", base+"/v1/scopes/default/leave", `{"group":"/svc/db","member":"db-1"}`)
	require.Equal(t, 404, code, "leaving a group one is not in")
	require.Contains(t, out["error"], "not a member")
	code, _ = call(t, "GET", base+"/v1/scopes/default/members?name=/svc/db", "")
	require.Equal(t, 404, code)
}

func TestAgentRefusesBadInput(t *testing.T) {
	base := startAgent(t)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/scopes/default/join", `{"group":"/a/**","member":"m"}`},
		{"POST", "/v1/scopes/default/join", `{"group":"/a","member":""}`},
		{"POST", "/v1/scopes/default/join", `{"group":"/a","member":"m","color":"red"}`},
		{"POST", "/v1/scopes/default/join", `{"group":"/a","member":"m"} {}`},
		{"POST", "/v1/scopes/default/join", `not json`},
		{"POST", "/v1/scopes/default/leave", `{"group":"/a","member":"m","meta":{"k":"v"}}`},
		{"GET", "/v1/scopes/default/members?name=/a*", ""},
		{"GET", "/v1/scopes/default/members?name=/a&where=nearby", ""},
		{"GET", "/v1/scopes/default/pick?name=/a&strategy=nearest", ""},
	} {
		code, out := call(t, c.method, base+c.path, c.body)
		require.Equal(t, 400, code, "%s %s %s", c.method, c.path, c.body)
		require.NotEmpty(t, out["error"])
	}
	_, out := call(t, "GET", base+"/v1/scopes/default/groups", "")
	require.Empty(t, out["groups"], "refused requests change nothing")
}

func TestAgentStreamsWatchEvents(t *testing.T) {
	base := startAgent(t)
	resp, err := http.Get(base + "/v1/scopes/default/watch?pattern=/svc/*")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	code, _ := call(t, "POST", base+"/v1/scopes/default/join", `{"group":"/svc/web","member":"w1"}`)
	require.Equal(t, 200, code)
	ev := (&sseReader{r: bufio.NewReader(resp.Body)}).nextEvent(t)
	require.Equal(t, "join", ev.kind)
	require.Contains(t, ev.data, `"group":"/svc/web"`)
	require.Contains(t, ev.data, `"id":"w1"`)
}

func TestMetaReplacesAndClears(t *testing.T) {
	base := startAgent(t)
	members := func() []any {
		t.Helper()
		code, out := call(t, "GET", base+"/v1/scopes/default/members?name=/svc/db", "")
		require.Equal(t, 200, code, out)
		return out["members"].([]any)
	}
	code, out := call(t, "POST", base+"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-1","meta":{"zone":"eu"}}`)
	require.Equal(t, 200, code, out)

	code, out = call(t, "POST", base+"/v1/scopes/default/meta", `{"group":"/svc/db","member":"db-1","meta":{"zone":"us","tier":"gold"}}`)
	require.Equal(t, 200, code, out)
	require.Equal(t, float64(1), out["count"], "a metadata change does not join")
	require.Equal(t, map[string]any{"zone": "us", "tier": "gold"}, members()[0].(map[string]any)["meta"])

	code, out = call(t, "POST", base+"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-1","meta":{}}`)
	require.Equal(t, 200, code, out)
	require.NotNil(t, members()[0].(map[string]any)["meta"], "a join with {} keeps the metadata")

	code, out = call(t, "POST", base+"/v1/scopes/default/meta", `{"group":"/svc/db","member":"db-1","meta":{}}`)
	require.Equal(t, 200, code, out)
	require.Nil(t, members()[0].(map[string]any)["meta"], `"meta":{} clears the metadata`)
}

func TestMembersComeInPages(t *testing.T) {
	base := startAgent(t)
	// Joined out of order: pages are ordered by member ID.
	ids := []string{"m3", "m0", "m4", "m1", "m2"}
	for _, id := range ids {
		code, out := call(t, "POST", base+"/v1/scopes/default/join", `{"group":"/g","member":"`+id+`"}`)
		require.Equal(t, 200, code, out)
	}
	var got []string
	next, pages := "", 0
	for {
		url := base + "/v1/scopes/default/members?name=/g&limit=2"
		if next != "" {
			url += "&after=" + next
		}
		code, out := call(t, "GET", url, "")
		require.Equal(t, 200, code, out)
		pages++
		page := out["members"].([]any)
		require.LessOrEqual(t, len(page), 2)
		for _, m := range page {
			got = append(got, m.(map[string]any)["id"].(string))
		}
		n, more := out["next"].(string)
		if !more {
			break
		}
		next = n
		if pages == 1 {
			// A member joining between pages that sorts before the cursor
			// is not seen, and nothing is seen twice.
			code, _ := call(t, "POST", base+"/v1/scopes/default/join", `{"group":"/g","member":"m00"}`)
			require.Equal(t, 200, code)
		}
	}
	require.Equal(t, []string{"m0", "m1", "m2", "m3", "m4"}, got)
	require.Equal(t, 3, pages)

	code, out := call(t, "GET", base+"/v1/scopes/default/members?name=/g&limit=10000", "")
	require.Equal(t, 200, code)
	require.Len(t, out["members"], 6)
	require.NotContains(t, out, "next", "no next page when all fit")
}

func TestReadinessFollowsTheAgentsLife(t *testing.T) {
	node, err := registry.New(registry.Config{Name: "t1"})
	require.NoError(t, err)
	defer node.Close()
	a := &api{node: node, log: slog.New(slog.DiscardHandler), cfg: &agentConfig{}}
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		a.routes().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var out map[string]string
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
		return rec.Code, out["status"]
	}
	code, status := readyz()
	require.Equal(t, 503, code)
	require.Equal(t, "starting", status)
	a.setReady()
	code, status = readyz()
	require.Equal(t, 200, code)
	require.Equal(t, "ready", status)
	a.stopping.Store(true)
	code, status = readyz()
	require.Equal(t, 503, code)
	require.Equal(t, "stopping", status)
}

func TestAStartingAgentSaysSo(t *testing.T) {
	front := newFrontHandler()
	get := func(path string) (int, map[string]string) {
		rec := httptest.NewRecorder()
		front.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var out map[string]string
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
		return rec.Code, out
	}
	code, out := get("/readyz")
	require.Equal(t, 503, code)
	require.Equal(t, "starting", out["status"])
	code, _ = get("/livez")
	require.Equal(t, 200, code)
	code, out = get("/v1/scopes")
	require.Equal(t, 503, code)
	require.Contains(t, out["error"], "starting")

	front.set(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	code, out = get("/readyz")
	require.Equal(t, 200, code, "the whole API answers once set")
	require.Equal(t, "ready", out["status"])
}

// The agent's --help prints the flags once, on stdout, and exits 0; a bad
// flag is one line on stderr and exit 2; --version and the version verb
// print the version.
func TestAgentCommandLine(t *testing.T) {
	ctx := context.Background()
	var out, errs strings.Builder
	require.Equal(t, 0, cli(ctx, []string{"--help"}, &out, &errs))
	require.Empty(t, errs.String(), "help goes to stdout only")
	require.Equal(t, 1, strings.Count(out.String(), "-data-dir"), out.String())

	out.Reset()
	errs.Reset()
	require.Equal(t, 2, cli(ctx, []string{"agent", "--bogus"}, &out, &errs))
	require.Empty(t, out.String())
	require.Equal(t, 1, strings.Count(errs.String(), "\n"), errs.String())
	require.Contains(t, errs.String(), "-bogus")

	for _, args := range [][]string{{"--version"}, {"version"}} {
		out.Reset()
		require.Equal(t, 0, cli(ctx, args, &out, &errs))
		require.True(t, strings.HasPrefix(out.String(), "cpgd "), out.String())
	}
}
