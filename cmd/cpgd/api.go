package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cpggo/cpg/registry"
)

// maxBody bounds a request body: the largest legal join (names and
// metadata at their limits) fits with room to spare.
const maxBody = 64 << 10

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
}

func (a *api) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/scopes/{scope}/join", a.change(changeJoin))
	mux.HandleFunc("POST /v1/scopes/{scope}/leave", a.change(changeLeave))
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
		if !a.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	a.watchRoutes(mux)
	a.leaseRoutes(mux)
	a.observeRoutes(mux)
	return mux
}

// handler is the whole HTTP API: the routes behind the request guard
// (token, origin, limits) and the request metrics.
func (a *api) handler() http.Handler {
	return a.guard(a.instrument(a.routes()))
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

func (a *api) scope(w http.ResponseWriter, r *http.Request) (*registry.Scope, bool) {
	s, err := a.node.Scope(r.PathValue("scope"))
	if err != nil {
		writeError(w, err)
		return nil, false
	}
	return s, true
}

// decode reads a JSON body strictly: unknown fields, trailing data and
// oversized bodies are errors, so a typo never silently changes a request.
func decode(w http.ResponseWriter, r *http.Request, into any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("bad JSON body: %v", err)})
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeJSON(w, http.StatusBadRequest, errorBody{"bad JSON body: data after the object"})
		return false
	}
	return true
}

// change serves join and leave: decode, apply (durably, through
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
		s, ok := a.scope(w, r)
		if !ok {
			return
		}
		count, err := a.applyChange(r.Context(), change{kind: kind, scope: s, group: req.Group, member: req.Member, meta: req.Meta, lease: req.Lease})
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"group": req.Group, "member": req.Member, "count": count})
	}
}

func (a *api) members(w http.ResponseWriter, r *http.Request) {
	s, ok := a.scope(w, r)
	if !ok {
		return
	}
	name := r.URL.Query().Get("name")
	var g registry.Group
	var err error
	switch where := r.URL.Query().Get("where"); where {
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
	out := make([]memberJSON, len(g.Members))
	for i := range g.Members {
		out[i] = toJSON(&g.Members[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": g.Name, "members": out})
}

func (a *api) pick(w http.ResponseWriter, r *http.Request) {
	s, ok := a.scope(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
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
	writeJSON(w, http.StatusOK, map[string]any{"group": group, "member": toJSON(&m)})
}

func (a *api) groups(w http.ResponseWriter, r *http.Request) {
	s, ok := a.scope(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": nonNil(s.Groups())})
}

func (a *api) scopes(w http.ResponseWriter, _ *http.Request) {
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
