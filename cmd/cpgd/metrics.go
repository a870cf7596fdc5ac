package main

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/registry"
)

// metrics are one agent's Prometheus metrics. Each agent has a registry of
// its own, not the global one, so that several agents run in one process
// (the tests do). The registry's numbers are read from the node when
// /metrics is scraped; only the request metrics are kept as requests go.
type metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec   // route, code
	latency  *prometheus.HistogramVec // route
	// byRoute caches the counter and histogram of each (route, code), so
	// that a request costs a map load and two atomic adds, not the hashing
	// of its labels.
	byRoute sync.Map // routeCode -> *routeMetrics

	// watches counts the open watch streams: the watch routes add one
	// when a stream starts and take it away when it ends.
	watches prometheus.Gauge
	// leases counts the live leases: the lease routes keep it.
	leases prometheus.Gauge
}

type routeCode struct {
	route string
	code  int
}

type routeMetrics struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// latencyBuckets span a lookup on loopback (tens of microseconds) to a
// durable write on a slow disk (a second).
var latencyBuckets = []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1}

func newMetrics(node *registry.Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpgd_http_requests_total",
			Help: "HTTP requests answered, by route pattern (\"unmatched\" for none) and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cpgd_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern; streams (watches) are not observed.",
			Buckets: latencyBuckets,
		}, []string{"route"}),
		watches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpgd_watches",
			Help: "Open watch streams.",
		}),
		leases: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpgd_leases",
			Help: "Live leases.",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.watches, m.leases,
		nodeCollector{node},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ensureMetrics gives the API its metrics if whoever built it did not.
func (a *api) ensureMetrics() *metrics {
	if a.metrics == nil {
		a.metrics = newMetrics(a.node)
	}
	return a.metrics
}

func (a *api) observeRoutes(mux *http.ServeMux) {
	m := a.ensureMetrics()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
}

// requestMetrics is false in a build made to measure what the request
// metrics cost (see BENCHMARKS.md).
var requestMetrics = true

// instrument wraps the API with the request metrics: a count by route
// pattern and status code, and a latency histogram by route. The route is
// the pattern the mux matched, never the path, so that the number of
// series stays bounded whatever clients ask for.
func (a *api) instrument(h http.Handler) http.Handler {
	m := a.ensureMetrics()
	if !requestMetrics {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := recorders.Get().(*statusRecorder)
		rec.ResponseWriter, rec.code, rec.streamed = w, 0, false
		defer func() {
			code := rec.code
			if code == 0 {
				code = http.StatusOK
			}
			rm := m.route(r.Pattern, code)
			rm.requests.Inc()
			if !rec.streamed {
				rm.latency.Observe(time.Since(start).Seconds())
			}
			rec.ResponseWriter = nil
			recorders.Put(rec)
		}()
		h.ServeHTTP(rec, r)
	})
}

func (m *metrics) route(pattern string, code int) *routeMetrics {
	if pattern == "" {
		pattern = "unmatched"
	}
	key := routeCode{pattern, code}
	if rm, ok := m.byRoute.Load(key); ok {
		return rm.(*routeMetrics)
	}
	rm := &routeMetrics{
		requests: m.requests.WithLabelValues(pattern, strconv.Itoa(code)),
		latency:  m.latency.WithLabelValues(pattern),
	}
	actual, _ := m.byRoute.LoadOrStore(key, rm)
	return actual.(*routeMetrics)
}

var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

// statusRecorder notes the status code a handler answers with, and
// whether it streams (flushes before the end).
type statusRecorder struct {
	http.ResponseWriter
	code     int
	streamed bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush keeps streams working through the recorder.
func (s *statusRecorder) Flush() {
	s.streamed = true
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (write
// deadlines of streams).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// nodeCollector reads the node's counters at scrape time (Node.Stats), so
// that joins and lookups pay nothing for them.
type nodeCollector struct{ node *registry.Node }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	scopeGroupsDesc  = desc("cpg_scope_groups", "Stored groups (names and patterns) of a scope, over every node's members.", "scope")
	scopeMembersDesc = desc("cpg_scope_members", "Members of a scope's groups, over every node's members (a member of two groups counts twice).", "scope")
	changesDesc      = desc("cpg_registry_changes_total", "Changes to members' entries applied to this replica, by kind (join, leave, meta) and origin (local: this node's own members; remote: other nodes').", "kind", "origin")

	broadcastSentDesc     = desc("cpg_broadcast_messages_sent_total", "Plumtree messages sent, by type.", "type")
	broadcastReceivedDesc = desc("cpg_broadcast_messages_received_total", "Plumtree messages received, by type.", "type")
	deliveredDesc         = desc("cpg_broadcast_delivered_total", "Broadcast payloads delivered as new.")
	duplicatesDesc        = desc("cpg_broadcast_duplicates_total", "Broadcast payloads received again (each prunes a link).")
	graftsDesc            = desc("cpg_broadcast_grafts_total", "Grafts sent for a payload announced but not received.")
	graftMissesDesc       = desc("cpg_broadcast_graft_misses_total", "Grafts received that this node could not answer with the payload.")
	rmrDesc               = desc("cpg_broadcast_rmr", "Relative message redundancy at this node since start: payloads received per payload delivered, minus one (0 is the limit).")

	replicationDesc   = desc("cpg_replication_events_total", "What the replication core did with what it received, by event.", "event")
	exchangeBytesDesc = desc("cpg_replication_exchange_sent_bytes_total", "Bytes of anti-entropy exchange messages this node produced.")

	activeDesc  = desc("cpg_overlay_active_peers", "Peers in the overlay's active view (links held).")
	passiveDesc = desc("cpg_overlay_passive_peers", "Peers in the overlay's passive view (spares).")
	rttDesc     = desc("cpg_overlay_link_rtt_seconds", "Smoothed round-trip time of the link to an active peer.", "peer")
	nodesDesc   = desc("cpg_cluster_nodes", "Cluster nodes this node knows, itself included, by status.", "status")
)

var allDescs = []*prometheus.Desc{
	scopeGroupsDesc, scopeMembersDesc, changesDesc,
	broadcastSentDesc, broadcastReceivedDesc, deliveredDesc, duplicatesDesc, graftsDesc, graftMissesDesc, rmrDesc,
	replicationDesc, exchangeBytesDesc,
	activeDesc, passiveDesc, rttDesc, nodesDesc,
}

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.node.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, s := range st.Scopes {
		gauge(scopeGroupsDesc, float64(s.Groups), s.Name)
		gauge(scopeMembersDesc, float64(s.Members), s.Name)
	}
	for _, o := range []struct {
		origin string
		c      registry.ChangeCounts
	}{{"local", st.Local}, {"remote", st.Remote}} {
		counter(changesDesc, o.c.Joins, "join", o.origin)
		counter(changesDesc, o.c.Leaves, "leave", o.origin)
		counter(changesDesc, o.c.Metas, "meta", o.origin)
	}
	cs := st.Cluster
	if cs == nil {
		return
	}
	b := &cs.Broadcast
	for t := 1; t < len(b.Sent); t++ {
		name := msgTypeLabel(plumtree.MsgType(t))
		counter(broadcastSentDesc, b.Sent[t], name)
		counter(broadcastReceivedDesc, b.Received[t], name)
	}
	counter(deliveredDesc, b.Delivered)
	counter(duplicatesDesc, b.Duplicates)
	counter(graftsDesc, b.GraftsSent)
	counter(graftMissesDesc, b.GraftMisses)
	if rmr, ok := cs.RMR(); ok {
		gauge(rmrDesc, rmr)
	}
	r := &cs.Replication
	for _, e := range []struct {
		event string
		v     uint64
	}{
		{"applied", r.Applied}, {"buffered", r.Buffered}, {"duplicate", r.Duplicates},
		{"refused", r.Refused}, {"malformed", r.Malformed}, {"pull", r.Pulls},
		{"passed", r.Passed}, {"refute", r.Refutes}, {"death", r.Deaths},
	} {
		counter(replicationDesc, e.v, e.event)
	}
	counter(exchangeBytesDesc, r.ExchangeBytes)
	gauge(activeDesc, float64(len(cs.Active)))
	gauge(passiveDesc, float64(cs.Passive))
	for _, p := range cs.Active {
		if p.RTT > 0 {
			gauge(rttDesc, p.RTT.Seconds(), p.Name)
		}
	}
	for status, count := range cs.Nodes {
		gauge(nodesDesc, float64(count), status.String())
	}
}

// msgTypeLabel turns "EXCHANGE-END" into "exchange_end".
func msgTypeLabel(t plumtree.MsgType) string {
	return strings.ReplaceAll(strings.ToLower(t.String()), "-", "_")
}
