// Package clienttest serves an imitation of a cpgd agent's HTTP API in
// memory, for tests of code that uses package client without running an
// agent.
//
// It follows the API's contract (docs/API.md) for one node on its own:
// joins, leaves, metadata, paged member listings, picks, scopes, groups,
// digests, leases that lapse, and watches with event ids, snapshots,
// Last-Event-ID resume, resets and heartbeats. It is simpler than an agent
// where a test cannot tell: a pattern's "*" matches any characters (and
// "?" is a literal), every pick strategy takes the eligible member that
// joined first (random ones too), there are no remote members (where=remote
// and the remote strategy find none), and the digest is a count. Tests can also cut every stream
// (CutStreams), make the agent forget its events as a restart would
// (Restart), and set the node list and send node events.
package clienttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server.
type Options struct {
	// Token, when set, is required of every /v1 call as a bearer token.
	Token string
	// Node is the name members join under (default "local").
	Node string
	// Heartbeat is the interval of the streams' heartbeats (default 15 s).
	Heartbeat time.Duration
	// History is how many events a stream can resume after (default 1024).
	History int
	// PageSize is the default member page size (default 1000).
	PageSize int
}

// Server is an in-memory imitation of one cpgd agent.
type Server struct {
	*httptest.Server
	opts Options

	mu      sync.Mutex
	scopes  map[string]map[string][]*member // scope -> group -> members in join order
	leases  map[string]*lease
	leaseN  int
	epoch   int
	seq     int
	history []event // the last opts.History events, oldest first
	changed chan struct{}
	cut     chan struct{}
	cutWith string // the event the streams being cut send first, if any
	nodes   []Node
	nodeEv  []event
}

type member struct {
	ID     string            `json:"id"`
	Node   string            `json:"node"`
	Meta   map[string]string `json:"meta,omitempty"`
	Count  int               `json:"count"`
	Joined time.Time         `json:"joined"`
	lease  string
}

type lease struct {
	id    string
	ttl   time.Duration
	timer *time.Timer
	exp   time.Time
}

// event is one entry of a stream's history.
type event struct {
	id   string
	kind string
	data []byte
}

// Node is a node as GET /v1/nodes lists it.
type Node struct {
	Name        string  `json:"name"`
	Status      string  `json:"status"`
	Incarnation uint64  `json:"incarnation"`
	RTTms       float64 `json:"rtt_ms"`
	Addr        string  `json:"addr"`
	Gossip      string  `json:"gossip"`
	HTTP        string  `json:"http,omitempty"`
}

// NewServer starts a Server; Close stops it.
func NewServer(opts Options) *Server {
	if opts.Node == "" {
		opts.Node = "local"
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.History <= 0 {
		opts.History = 1024
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 1000
	}
	s := &Server{opts: opts, scopes: map[string]map[string][]*member{}, leases: map[string]*lease{},
		epoch: 1, changed: make(chan struct{}), cut: make(chan struct{})}
	s.Server = httptest.NewServer(s.routes())
	return s
}

// Close ends every stream and stops the server and the lease timers.
func (s *Server) Close() {
	s.CutStreams()
	s.mu.Lock()
	for _, l := range s.leases {
		l.timer.Stop()
	}
	s.mu.Unlock()
	s.Server.CloseClientConnections()
	s.Server.Close()
}

// CutStreams ends every open watch stream at once, as a lost connection
// would; their clients may resume.
func (s *Server) CutStreams() { s.cutStreams("") }

// Overflow ends every open watch stream as an agent ends a watcher that
// fell behind: with an overflow event. Their clients must re-list.
func (s *Server) Overflow() { s.cutStreams("overflow") }

func (s *Server) cutStreams(with string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutWith = with
	close(s.cut)
	s.cut = make(chan struct{})
}

// Restart makes the server forget its events, as a restarted agent
// would: ids it issued before can no longer be resumed from. The
// registrations stay.
func (s *Server) Restart() {
	s.mu.Lock()
	s.epoch++
	s.history = nil
	s.mu.Unlock()
	s.CutStreams()
}

// SetNodes sets what GET /v1/nodes lists.
func (s *Server) SetNodes(nodes ...Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes = slices.Clone(nodes)
}

// NodeChange records a node's new status (up, suspect, dead, refuted or
// left) and sends it to the node streams.
func (s *Server) NodeChange(kind string, n Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.nodes {
		if s.nodes[i].Name == n.Name {
			s.nodes[i] = n
		}
	}
	data, _ := json.Marshal(n)
	s.nodeEv = append(s.nodeEv, event{kind: kind, data: data})
	s.notifyLocked()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/scopes/{scope}/join", s.join)
	mux.HandleFunc("POST /v1/scopes/{scope}/leave", s.leave)
	mux.HandleFunc("POST /v1/scopes/{scope}/meta", s.meta)
	mux.HandleFunc("GET /v1/scopes/{scope}/members", s.members)
	mux.HandleFunc("GET /v1/scopes/{scope}/pick", s.pick)
	mux.HandleFunc("GET /v1/scopes/{scope}/groups", s.groups)
	mux.HandleFunc("GET /v1/scopes/{scope}/digest", s.digest)
	mux.HandleFunc("GET /v1/scopes/{scope}/watch", s.watch)
	mux.HandleFunc("GET /v1/scopes", s.scopeList)
	mux.HandleFunc("POST /v1/leases", s.grant)
	mux.HandleFunc("GET /v1/leases/{id}", s.showLease)
	mux.HandleFunc("POST /v1/leases/{id}/keepalive", s.keepAlive)
	mux.HandleFunc("DELETE /v1/leases/{id}", s.revoke)
	mux.HandleFunc("GET /v1/nodes", s.nodeList)
	mux.HandleFunc("GET /v1/nodes/watch", s.watchNodes)
	mux.HandleFunc("GET /v1/overlay", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"name": s.opts.Node, "active": []any{}, "passive": []any{}, "eager": []any{}, "lazy": []any{}})
	})
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such call")
	})
	return s.guard(mux)
}

func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Token != "" && strings.HasPrefix(r.URL.Path, "/v1/") &&
			r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		if r.Method == "POST" && r.Header.Get("Content-Type") != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "a body must be application/json")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func decode(w http.ResponseWriter, r *http.Request, into any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

type change struct {
	Group  string             `json:"group"`
	Member string             `json:"member"`
	Meta   *map[string]string `json:"meta"`
	Lease  string             `json:"lease"`
}

func validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "\x00\n")
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	var c change
	if !decode(w, r, &c) {
		return
	}
	if !validName(c.Group) || !validName(c.Member) || strings.Contains(c.Group, "*") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid group %q or member %q", c.Group, c.Member))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Lease != "" && s.leases[c.Lease] == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no lease %q", c.Lease))
		return
	}
	scope := r.PathValue("scope")
	if s.scopes[scope] == nil {
		s.scopes[scope] = map[string][]*member{}
	}
	m := s.find(scope, c.Group, c.Member)
	if m == nil {
		m = &member{ID: c.Member, Node: s.opts.Node, Joined: time.Now().UTC()}
		s.scopes[scope][c.Group] = append(s.scopes[scope][c.Group], m)
	}
	m.Count++
	if c.Meta != nil {
		m.Meta = *c.Meta
	}
	if c.Lease != "" {
		m.lease = c.Lease
	}
	s.recordLocked("join", scope, c.Group, m)
	writeJSON(w, http.StatusOK, map[string]any{"group": c.Group, "member": c.Member, "count": m.Count})
}

func (s *Server) find(scope, group, id string) *member {
	for _, m := range s.scopes[scope][group] {
		if m.ID == id {
			return m
		}
	}
	return nil
}

func (s *Server) leave(w http.ResponseWriter, r *http.Request) {
	var c change
	if !decode(w, r, &c) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	scope := r.PathValue("scope")
	m := s.find(scope, c.Group, c.Member)
	if m == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not a member of %s", c.Member, c.Group))
		return
	}
	s.leaveLocked(scope, c.Group, m)
	writeJSON(w, http.StatusOK, map[string]any{"group": c.Group, "member": c.Member, "count": m.Count})
}

func (s *Server) leaveLocked(scope, group string, m *member) {
	m.Count--
	if m.Count == 0 {
		s.scopes[scope][group] = slices.DeleteFunc(s.scopes[scope][group], func(x *member) bool { return x == m })
		if len(s.scopes[scope][group]) == 0 {
			delete(s.scopes[scope], group)
		}
	}
	s.recordLocked("leave", scope, group, m)
}

func (s *Server) meta(w http.ResponseWriter, r *http.Request) {
	var c change
	if !decode(w, r, &c) {
		return
	}
	if c.Meta == nil {
		writeError(w, http.StatusBadRequest, "meta is required ({} clears it)")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	scope := r.PathValue("scope")
	m := s.find(scope, c.Group, c.Member)
	if m == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not a member of %s", c.Member, c.Group))
		return
	}
	m.Meta = *c.Meta
	if len(m.Meta) == 0 {
		m.Meta = nil
	}
	s.recordLocked("meta", scope, c.Group, m)
	writeJSON(w, http.StatusOK, map[string]any{"group": c.Group, "member": c.Member, "count": m.Count})
}

// recordLocked appends a change to the history and wakes the streams.
func (s *Server) recordLocked(kind, scope, group string, m *member) {
	s.seq++
	data, _ := json.Marshal(map[string]any{"scope": scope, "group": group, "member": m})
	s.history = append(s.history, event{id: s.idLocked(), kind: kind, data: data})
	if len(s.history) > s.opts.History {
		s.history = s.history[len(s.history)-s.opts.History:]
	}
	s.notifyLocked()
}

func (s *Server) idLocked() string { return fmt.Sprintf("e%d-%d", s.epoch, s.seq) }

// lookup finds the group a name selects: the name itself, else the first
// stored pattern matching it.
func (s *Server) lookupLocked(scope, name string) (string, []*member) {
	groups := s.scopes[scope]
	if ms, ok := groups[name]; ok {
		return name, ms
	}
	keys := make([]string, 0, len(groups))
	for g := range groups {
		keys = append(keys, g)
	}
	slices.Sort(keys)
	for _, g := range keys {
		if strings.Contains(g, "*") && match(g, name) {
			return g, groups[g]
		}
	}
	return "", nil
}

func (s *Server) members(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := s.opts.PageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit=%q: want a positive integer", v))
			return
		}
		limit = n
	}
	switch where := q.Get("where"); where {
	case "", "local":
	case "remote":
		writeError(w, http.StatusNotFound, "no remote members on a node on its own")
		return
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("where=%q: want local or remote", where))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	group, ms := s.lookupLocked(r.PathValue("scope"), q.Get("name"))
	if ms == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no group %q", q.Get("name")))
		return
	}
	// The cursor is the last member listed: members are paged in ID
	// order, so one that joins or leaves meanwhile moves no other.
	sorted := slices.Clone(ms)
	slices.SortFunc(sorted, func(a, b *member) int { return strings.Compare(a.ID, b.ID) })
	after := q.Get("after")
	start, _ := slices.BinarySearchFunc(sorted, after, func(m *member, id string) int {
		if strings.Compare(m.ID, id) <= 0 {
			return -1
		}
		return 1
	})
	page := sorted[start:min(start+limit, len(sorted))]
	out := map[string]any{"group": group, "members": page}
	if start+limit < len(sorted) {
		out["next"] = page[len(page)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) pick(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch st := q.Get("strategy"); st {
	case "closest", "furthest", "random", "local", "oldest", "newest", "remote":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown pick strategy %q", st))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	group, ms := s.lookupLocked(r.PathValue("scope"), q.Get("name"))
	if ms == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no group %q", q.Get("name")))
		return
	}
	if q.Get("strategy") != "remote" {
		for _, m := range ms {
			if !slices.Contains(q["exclude"], m.ID) {
				writeJSON(w, http.StatusOK, map[string]any{"group": group, "member": m})
				return
			}
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no eligible member of %q", group))
}

func (s *Server) groups(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	groups, ok := s.scopes[r.PathValue("scope")]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no scope %q", r.PathValue("scope")))
		return
	}
	names := []string{}
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	writeJSON(w, http.StatusOK, map[string]any{"groups": names})
}

func (s *Server) scopeList(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := []string{}
	for sc := range s.scopes {
		names = append(names, sc)
	}
	slices.Sort(names)
	writeJSON(w, http.StatusOK, map[string]any{"scopes": names})
}

func (s *Server) digest(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	groups, ok := s.scopes[r.PathValue("scope")]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no scope %q", r.PathValue("scope")))
		return
	}
	members := 0
	for _, ms := range groups {
		members += len(ms)
	}
	writeJSON(w, http.StatusOK, map[string]any{"digest": fmt.Sprintf("fake-%d", s.seq), "groups": len(groups), "members": members})
}

func (s *Server) nodeList(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"nodes": append([]Node{}, s.nodes...)})
}
