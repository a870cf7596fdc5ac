package main

import (
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// scrape reads an agent's /metrics.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// sample returns the value of the series of family name whose labels
// include the given ones (name, value, name, value...); a histogram's
// value is its count. ok is false when there is no such series.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func requireSample(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	v, ok := sample(fams, name, labels...)
	require.True(t, ok, "no series %s%v", name, labels)
	require.Equal(t, want, v, "%s%v", name, labels)
}

func TestMetricsCountMembersChangesAndRequests(t *testing.T) {
	base := startAgent(t)
	for _, c := range []struct{ path, body string }{
		{"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-1"}`},
		{"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-2"}`},
		{"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-3"}`},
		{"/v1/scopes/default/leave", `{"group":"/svc/db","member":"db-3"}`},
		{"/v1/scopes/jobs/join", `{"group":"/q","member":"w1"}`},
		{"/v1/scopes/jobs/join", `{"group":"/q/*","member":"w2"}`},
	} {
		code, out := call(t, "POST", base+c.path, c.body)
		require.Equal(t, 200, code, out)
	}
	for _, c := range []struct {
		path string
		code int
	}{
		{"/v1/scopes/default/members?name=/svc/db", 200},
		{"/v1/scopes/jobs/members?name=/q", 200},
		{"/v1/scopes/default/members?name=/svc/none", 404},
		{"/v1/scopes/default/pick?name=/svc/db&strategy=random", 200},
		{"/no/such/route", 404},
		{"/v1/scopes/default/join", 405},
	} {
		resp, err := http.Get(base + c.path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, c.code, resp.StatusCode, c.path)
	}

	fams := scrape(t, base)
	requireSample(t, fams, 1, "cpg_scope_groups", "scope", "default")
	requireSample(t, fams, 2, "cpg_scope_members", "scope", "default")
	requireSample(t, fams, 2, "cpg_scope_groups", "scope", "jobs")
	requireSample(t, fams, 2, "cpg_scope_members", "scope", "jobs")
	requireSample(t, fams, 5, "cpg_registry_changes_total", "kind", "join", "origin", "local")
	requireSample(t, fams, 1, "cpg_registry_changes_total", "kind", "leave", "origin", "local")
	requireSample(t, fams, 0, "cpg_registry_changes_total", "kind", "join", "origin", "remote")

	// Requests are counted by the route's pattern, whatever the scope or
	// name in the path and query, so the series stay few.
	const join, members = "POST /v1/scopes/{scope}/join", "GET /v1/scopes/{scope}/members"
	requireSample(t, fams, 5, "cpgd_http_requests_total", "route", join, "code", "200")
	requireSample(t, fams, 2, "cpgd_http_requests_total", "route", members, "code", "200")
	requireSample(t, fams, 1, "cpgd_http_requests_total", "route", members, "code", "404")
	requireSample(t, fams, 1, "cpgd_http_requests_total", "route", "GET /v1/scopes/{scope}/pick", "code", "200")
	requireSample(t, fams, 1, "cpgd_http_requests_total", "route", "unmatched", "code", "404")
	requireSample(t, fams, 1, "cpgd_http_requests_total", "route", "unmatched", "code", "405")
	requireSample(t, fams, 3, "cpgd_http_request_duration_seconds", "route", members)
	require.Len(t, fams["cpgd_http_request_duration_seconds"].GetMetric(), 5,
		"one latency series per route seen: join, leave, members, pick, unmatched")

	requireSample(t, fams, 0, "cpgd_watches")
	requireSample(t, fams, 0, "cpgd_leases")
	_, ok := sample(fams, "go_goroutines")
	require.True(t, ok, "the Go runtime's metrics")
	_, ok = sample(fams, "process_resident_memory_bytes")
	require.True(t, ok, "the process's metrics")
	_, ok = sample(fams, "cpg_overlay_active_peers")
	require.False(t, ok, "a node on its own has no overlay")

	requireSample(t, scrape(t, base), 1, "cpgd_http_requests_total", "route", "GET /metrics", "code", "200")
}

// A watch stream is counted when it ends, and kept out of the latency
// histogram (its duration is the client's choice); it still streams
// through the instrumentation.
func TestMetricsCountAWatchStreamButNotItsDuration(t *testing.T) {
	base := startAgent(t)
	resp, err := http.Get(base + "/v1/scopes/default/watch?pattern=/svc/*")
	require.NoError(t, err)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	resp.Body.Close()
	const watch = "GET /v1/scopes/{scope}/watch"
	require.Eventually(t, func() bool {
		v, _ := sample(scrape(t, base), "cpgd_http_requests_total", "route", watch, "code", "200")
		return v == 1
	}, 5*time.Second, 10*time.Millisecond, "the ended stream is counted")
	requireSample(t, scrape(t, base), 0, "cpgd_http_request_duration_seconds", "route", watch)
}

// A cluster agent counts the other node's changes as remote and shows its
// overlay, the broadcast that carried the changes and its link's RTT.
func TestMetricsOfAClusterAgent(t *testing.T) {
	first := startAgent(t, "--name", "n1", "--gossip", "127.0.0.1:0", "--cluster-key", testKey, "--gossip-profile", "loopback", "--log-level", "warn")
	_, out := call(t, "GET", first+"/v1/nodes", "")
	gossip := out["nodes"].([]any)[0].(map[string]any)["gossip"].(string)
	second := startAgent(t, "--name", "n2", "--join", gossip, "--cluster-key", testKey, "--gossip-profile", "loopback", "--log-level", "warn")

	for _, m := range []string{"a", "b", "c"} {
		code, out := call(t, "POST", first+"/v1/scopes/default/join", `{"group":"/svc","member":"`+m+`"}`)
		require.Equal(t, 200, code, out)
	}
	var fams map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		fams = scrape(t, second)
		members, _ := sample(fams, "cpg_scope_members", "scope", "default")
		_, rtt := sample(fams, "cpg_overlay_link_rtt_seconds", "peer", "n1")
		return members == 3 && rtt
	}, 10*time.Second, 20*time.Millisecond, "the joins and a measured RTT reach the second node's metrics")
	requireSample(t, fams, 3, "cpg_registry_changes_total", "kind", "join", "origin", "remote")
	requireSample(t, fams, 0, "cpg_registry_changes_total", "kind", "join", "origin", "local")
	requireSample(t, fams, 1, "cpg_overlay_active_peers")
	requireSample(t, fams, 2, "cpg_cluster_nodes", "status", "alive")
	received, _ := sample(fams, "cpg_broadcast_messages_received_total", "type", "gossip")
	require.GreaterOrEqual(t, received, 1.0, "the joins arrived as gossip")
	applied, _ := sample(fams, "cpg_replication_events_total", "event", "applied")
	require.GreaterOrEqual(t, applied, 1.0)
	rtt, _ := sample(fams, "cpg_overlay_link_rtt_seconds", "peer", "n1")
	require.Greater(t, rtt, 0.0)
	require.Less(t, rtt, 1.0, "a loopback link's RTT, in seconds")

	sent, _ := sample(scrape(t, first), "cpg_broadcast_messages_sent_total", "type", "gossip")
	require.GreaterOrEqual(t, sent, 1.0)
}
