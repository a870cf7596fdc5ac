package clienttest

import (
	"fmt"
	"net/http"
	"time"
)

func (s *Server) grant(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TTL string `json:"ttl"`
	}
	if !decode(w, r, &req) {
		return
	}
	ttl, err := time.ParseDuration(req.TTL)
	if err != nil || ttl <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("ttl %q: want a positive duration such as \"10s\"", req.TTL))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaseN++
	l := &lease{id: fmt.Sprintf("lease-%d", s.leaseN), ttl: ttl, exp: time.Now().Add(ttl)}
	l.timer = time.AfterFunc(ttl, func() { s.lapse(l.id) })
	s.leases[l.id] = l
	writeJSON(w, http.StatusOK, leaseJSON(l))
}

func leaseJSON(l *lease) map[string]any {
	return map[string]any{"id": l.id, "ttl": l.ttl.String(), "expires": l.exp.UTC()}
}

func (s *Server) showLease(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no lease %q", r.PathValue("id")))
		return
	}
	out := leaseJSON(l)
	var members []map[string]any
	for scope, groups := range s.scopes {
		for group, ms := range groups {
			for _, m := range ms {
				if m.lease == l.id {
					members = append(members, map[string]any{"scope": scope, "group": group, "member": m.ID, "count": m.Count})
				}
			}
		}
	}
	if members != nil {
		out["members"] = members
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) keepAlive(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no lease %q", r.PathValue("id")))
		return
	}
	l.timer.Reset(l.ttl)
	l.exp = time.Now().Add(l.ttl)
	writeJSON(w, http.StatusOK, leaseJSON(l))
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if !s.end(r.PathValue("id")) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no lease %q", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
}

func (s *Server) lapse(id string) { s.end(id) }

// end forgets a lease and makes every member joined with it leave.
func (s *Server) end(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[id]
	if !ok {
		return false
	}
	l.timer.Stop()
	delete(s.leases, id)
	for scope, groups := range s.scopes {
		for group, ms := range groups {
			for _, m := range ms {
				if m.lease != id {
					continue
				}
				for m.Count > 0 {
					s.leaveLocked(scope, group, m)
				}
			}
		}
	}
	return true
}

// Leases is how many leases the server holds.
func (s *Server) Leases() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.leases)
}
