package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cpggo/cpg/registry"
)

// defaultMaxBody bounds a request body unless --max-body says otherwise:
// the largest legal join (names and metadata at their limits) fits with
// room to spare.
const defaultMaxBody = 64 << 10

// maxPage bounds the members one page of a members call holds.
const maxPage = 10000

// api serves the registry part of cpgd's HTTP contract (docs/API.md).
type api struct {
	node *registry.Node
	log  *slog.Logger
	cfg  *agentConfig
	// metrics are the agent's Prometheus metrics (metrics.go).
	metrics *metrics
	// durable records every change before it is made, and keeps the
	// leases (apply.go, lease.go, store.go).
	durable *durable
	ready   atomic.Bool // ready.go
	// stopping is set once shutdown began: /readyz then answers 503 so a
	// load balancer stops sending work while the server drains.
	stopping atomic.Bool
	// listenPort is the port the API listens on, for the Host check.
	listenPort string
	// watches holds the watch streams' limits and counts (watch_limits.go).
	watches *watchHub
}

func (a *api) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/scopes/{scope}/join", a.change(changeJoin))
	mux.HandleFunc("POST /v1/scopes/{scope}/leave", a.change(changeLeave))
	mux.HandleFunc("POST /v1/scopes/{scope}/meta", a.change(changeMeta))
	mux.HandleFunc("GET /v1/scopes/{scope}/members", a.members)
	mux.HandleFunc("GET /v1/scopes/{scope}/pick", a.pick)
	mux.HandleFunc("GET /v1/scopes/{scope}/groups", a.groups)
	mux.HandleFunc("GET /v1/scopes", a.scopes)
	mux.HandleFunc("GET /v1/scopes/{scope}/digest", a.digest)
	mux.HandleFunc("GET /v1/nodes", a.nodes)
	mux.HandleFunc("GET /v1/overlay", a.overlay)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case a.stopping.Load():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "stopping"})
		case !a.ready.Load():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}
	})
	a.watchRoutes(mux)
	a.leaseRoutes(mux)
	a.observeRoutes(mux)
	a.uiRoutes(mux)
	return mux
}

// handler is the whole HTTP API: the routes behind the request guard
// (token, origin, limits) and the request metrics.
func (a *api) handler() http.Handler {
	return a.guard(a.instrument(jsonFallback(a.routes())))
}

// memberJSON is a member as the API shows it.
type memberJSON struct {
	ID     string            `json:"id"`
	Node   string            `json:"node"`
	Meta   map[string]string `json:"meta,omitempty"`
	Count  uint32            `json:"count"`
	Joined time.Time         `json:"joined"`
}

func toJSON(m *registry.Member) memberJSON {
	return memberJSON{ID: m.ID, Node: m.Node, Meta: m.Meta, Count: m.Count, Joined: registry.JoinTime(m).UTC()}
}

type joinRequest struct {
	Group  string            `json:"group"`
	Member string            `json:"member"`
	Meta   map[string]string `json:"meta,omitempty"`
	Lease  string            `json:"lease,omitempty"`
}

// scope finds the scope a request names; it never creates one, so an
// unknown scope is a 404 (reads must not grow the registry).
func (a *api) scope(w http.ResponseWriter, r *http.Request) (*registry.Scope, bool) {
	name := r.PathValue("scope")
	s, ok := a.node.LookupScope(name)
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody{fmt.Sprintf("no such scope %q", name)})
		return nil, false
	}
	return s, true
}

// scopeToJoin finds or creates the scope a join names, once the join is
// known to be valid: a refused join must not leave a scope behind.
func (a *api) scopeToJoin(w http.ResponseWriter, r *http.Request, req *joinRequest) (*registry.Scope, bool) {
	if s, ok := a.node.LookupScope(r.PathValue("scope")); ok {
		return s, true
	}
	if err := registry.ValidateChange(req.Group, req.Member, req.Meta); err != nil {
		writeError(w, err)
		return nil, false
	}
	s, err := a.node.Scope(r.PathValue("scope"))
	if err != nil {
		writeError(w, err)
		return nil, false
	}
	return s, true
}

// change serves join, leave and meta: decode, apply (durably, through
// applyChange), answer with the member's join count after the change.
func (a *api) change(kind changeKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req joinRequest
		if !decode(w, r, &req) {
			return
		}
		if kind == changeLeave && req.Meta != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{"a leave takes no meta"})
			return
		}
		if kind == changeMeta && req.Meta == nil {
			writeJSON(w, http.StatusBadRequest, errorBody{`a meta call needs "meta" (an object; {} clears the metadata)`})
			return
		}
		if !readQueryNone(w, r) {
			return
		}
		var s *registry.Scope
		var ok bool
		if kind == changeJoin {
			s, ok = a.scopeToJoin(w, r, &req)
		} else {
			s, ok = a.scope(w, r)
		}
		if !ok {
			return
		}
		count, err := a.applyChange(r.Context(), change{kind: kind, scope: s, group: req.Group, member: req.Member, meta: req.Meta, lease: req.Lease})
		if err != nil {
			writeError(w, err)
			return
		}
		writeChangeJSON(w, req.Group, req.Member, count)
	}
}

func (a *api) members(w http.ResponseWriter, r *http.Request) {
	q, ok := readQuery(w, r, queryParams{"name": false, "where": false, "limit": false, "after": false})
	if !ok {
		return
	}
	page, err := parsePage(q)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return
	}
	s, ok := a.scope(w, r)
	if !ok {
		return
	}
	name := q.Get("name")
	var g registry.Group
	switch where := q.Get("where"); where {
	case "":
		g, err = s.Members(name)
	case "local":
		g, err = s.LocalMembers(name)
	case "remote":
		g, err = s.RemoteMembers(name)
	default:
		writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("where=%q: want local or remote", where)})
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	members, next := page.of(g.Members)
	writeMembersJSON(w, g.Name, members, next)
}

func (a *api) pick(w http.ResponseWriter, r *http.Request) {
	q, ok := readQuery(w, r, queryParams{"name": false, "strategy": false, "exclude": true})
	if !ok {
		return
	}
	s, ok := a.scope(w, r)
	if !ok {
		return
	}
	strategy, err := registry.ParseStrategy(q.Get("strategy"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return
	}
	group, m, err := s.Pick(q.Get("name"), strategy, q["exclude"]...)
	if err != nil {
		writeError(w, err)
		return
	}
	writePickJSON(w, group, &m)
}

func (a *api) groups(w http.ResponseWriter, r *http.Request) {
	if !readQueryNone(w, r) {
		return
	}
	s, ok := a.scope(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": nonNil(s.Groups())})
}

func (a *api) scopes(w http.ResponseWriter, r *http.Request) {
	if !readQueryNone(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"scopes": a.node.Scopes()})
}

type errorBody struct {
	Error string `json:"error"`
}

// writeError maps the registry's errors to status codes.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errBadRequest),
		errors.Is(err, registry.ErrInvalidName), errors.Is(err, registry.ErrInvalidMember),
		errors.Is(err, registry.ErrInvalidScope), errors.Is(err, registry.ErrPatternInLookup):
		status = http.StatusBadRequest
	case errors.Is(err, registry.ErrNoSuchGroup), errors.Is(err, registry.ErrNotMember),
		errors.Is(err, registry.ErrNoMember), errors.Is(err, errNoSuchLease):
		status = http.StatusNotFound
	case errors.Is(err, registry.ErrTooManyScopes):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, registry.ErrClosed), errors.Is(err, errStoreClosed):
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, errorBody{err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
