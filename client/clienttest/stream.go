package clienttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// sse writes a text/event-stream answer.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func startSSE(w http.ResponseWriter) sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	s := sse{w: w, f: w.(http.Flusher)}
	s.heartbeat()
	return s
}

func (s sse) heartbeat() bool {
	_, err := fmt.Fprint(s.w, ": heartbeat\n\n")
	s.f.Flush()
	return err == nil
}

func (s sse) send(id, kind string, data []byte) bool {
	var b strings.Builder
	if id != "" {
		fmt.Fprintf(&b, "id: %s\n", id)
	}
	fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", kind, data)
	_, err := fmt.Fprint(s.w, b.String())
	s.f.Flush()
	return err == nil
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	scope, pattern := r.PathValue("scope"), r.URL.Query().Get("pattern")
	snapshot := r.URL.Query().Get("snapshot")
	if snapshot != "" && snapshot != "1" && snapshot != "0" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("snapshot=%q: want 1 or 0", snapshot))
		return
	}
	s.mu.Lock()
	if _, ok := s.scopes[scope]; !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, fmt.Sprintf("no scope %q", scope))
		return
	}
	// pos is the sequence number of the last event the client saw: the
	// one it names, or the last one now.
	pos, resumable := s.seq, true
	if last := r.Header.Get("Last-Event-ID"); last != "" && snapshot != "1" {
		pos, resumable = s.positionLocked(last)
	}
	var members []event
	if snapshot == "1" {
		for group, ms := range s.scopes[scope] {
			if !watches(pattern, group) {
				continue
			}
			for _, m := range ms {
				data, _ := json.Marshal(map[string]any{"scope": scope, "group": group, "member": m})
				members = append(members, event{kind: "member", data: data})
			}
		}
	}
	// A stream ends at the first cut after it opened: the channel of
	// that cut is taken now, not at each turn of the loop below, which
	// would miss a cut made while it was between two turns.
	synced, epoch, cut := s.idLocked(), s.epoch, s.cut
	s.mu.Unlock()

	out := startSSE(w)
	if !resumable {
		out.send("", "reset", []byte(`{"error":"cannot resume: unknown event id"}`))
		return
	}
	if snapshot == "1" {
		for _, e := range members {
			out.send("", e.kind, e.data)
		}
		out.send(synced, "synced", []byte("{}"))
	}
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		if s.epoch != epoch {
			s.mu.Unlock()
			return
		}
		first := s.seq - len(s.history)
		if pos < first {
			s.mu.Unlock()
			out.send("", "overflow", []byte(`{"error":"the watcher fell behind"}`))
			return
		}
		pending := slices.Clone(s.history[pos-first:])
		s.mu.Unlock()
		for _, e := range pending {
			pos++
			if !watches(pattern, groupOf(e.data)) {
				continue
			}
			if !out.send(e.id, e.kind, e.data) {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-cut:
			s.mu.Lock()
			with := s.cutWith
			s.mu.Unlock()
			if with != "" {
				out.send("", with, []byte(`{"error":"the watcher fell behind"}`))
			}
			return
		case <-changed:
		case <-heartbeat.C:
			if !out.heartbeat() {
				return
			}
		}
	}
}

// positionLocked reads an event id of this server: its sequence number,
// and whether the stream can resume after it (same epoch, still in the
// history).
func (s *Server) positionLocked(id string) (int, bool) {
	var epoch, seq int
	if n, err := fmt.Sscanf(id, "e%d-%d", &epoch, &seq); n != 2 || err != nil {
		return 0, false
	}
	first := s.seq - len(s.history)
	return seq, epoch == s.epoch && seq >= first && seq <= s.seq
}

func groupOf(data []byte) string {
	var d struct {
		Group string `json:"group"`
	}
	_ = json.Unmarshal(data, &d)
	return d.Group
}

// watches reports whether a watch on pattern sees group's events.
func watches(pattern, group string) bool {
	return pattern == group || match(pattern, group)
}

// match reports whether name matches pattern, where "*" matches any run
// of characters (slashes included) and everything else itself.
func match(pattern, name string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == name
	}
	if !strings.HasPrefix(name, pattern[:star]) {
		return false
	}
	rest := pattern[star+1:]
	for i := star; i <= len(name); i++ {
		if match(rest, name[i:]) {
			return true
		}
	}
	return false
}

func (s *Server) watchNodes(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	nodes := slices.Clone(s.nodes)
	pos := len(s.nodeEv)
	cut := s.cut // as in watch: the first cut after the stream opened
	s.mu.Unlock()
	out := startSSE(w)
	for _, n := range nodes {
		data, _ := json.Marshal(n)
		out.send("", "node", data)
	}
	out.send("", "synced", []byte("{}"))
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		pending := slices.Clone(s.nodeEv[pos:])
		s.mu.Unlock()
		for _, e := range pending {
			pos++
			if !out.send("", e.kind, e.data) {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-cut:
			return
		case <-changed:
		case <-heartbeat.C:
			if !out.heartbeat() {
				return
			}
		}
	}
}
