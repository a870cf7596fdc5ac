package main

import (
	"encoding/json"
	"fmt"
	"net/http"
)

func (a *api) watchRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/scopes/{scope}/watch", a.watch)
}

// watch streams joins and leaves as server-sent events. A client that reads
// too slowly gets an "overflow" event and the stream ends: it must re-read
// the members and watch again.
func (a *api) watch(w http.ResponseWriter, r *http.Request) {
	s, ok := a.scope(w, r)
	if !ok {
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, errorBody{"streaming unsupported"})
		return
	}
	watch, err := s.Watch(r.URL.Query().Get("pattern"), 0)
	if err != nil {
		writeError(w, err)
		return
	}
	defer watch.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, open := <-watch.Events():
			if !open {
				return
			}
			data, _ := json.Marshal(map[string]any{"scope": ev.Scope, "group": ev.Group, "member": toJSON(&ev.Member)})
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Kind, data); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}
