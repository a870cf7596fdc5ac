package main

import (
	"net/http"
	"sync/atomic"
)

// frontHandler serves the agent's HTTP API from the moment it listens:
// until the node has loaded its data and joined, the "starting" answers,
// then the whole API. So a probe of /readyz during a long start reads
// 503 "starting" instead of waiting on a connection nobody serves.
type frontHandler struct {
	h atomic.Pointer[http.Handler]
}

func newFrontHandler() *frontHandler {
	f := &frontHandler{}
	f.set(http.HandlerFunc(serveStarting))
	return f
}

func (f *frontHandler) set(h http.Handler) { f.h.Store(&h) }

func (f *frontHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*f.h.Load()).ServeHTTP(w, r)
}

// serveStarting answers while the agent starts: alive, not ready, and
// nothing else yet (nothing is read, so nothing needs the guard).
func serveStarting(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/livez":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case "/readyz":
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
	default:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"starting: the node is loading its data and joining its cluster"})
	}
}
