package main

import (
	"fmt"
	"net/http"
	"strings"
)

// jsonFallback answers, in JSON like every other error, what the mux would
// answer in plain text: 404 for an unknown path and 405 (with Allow) for a
// known path with another method. A path that is not in canonical form
// ("//", "/./", "/../") is a 404 too, where the mux would redirect: a
// client of an API wants the error, not a redirect its POST may not follow.
func jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !canonicalPath(r.URL.Path) {
			writeJSON(w, http.StatusNotFound, errorBody{fmt.Sprintf("no such path %q (not in canonical form)", r.URL.Path)})
			return
		}
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's own answer says which: run it aside and keep its status
		// and Allow header.
		var probe headerProbe
		h.ServeHTTP(&probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			allow := probe.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow)})
			return
		}
		writeJSON(w, http.StatusNotFound, errorBody{fmt.Sprintf("no such path %q", r.URL.Path)})
	})
}

func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") {
		return false
	}
	return !strings.HasSuffix(p, "/.") && !strings.HasSuffix(p, "/..")
}

// headerProbe is a ResponseWriter that keeps the status and headers and
// drops the body.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header {
	if p.header == nil {
		p.header = make(http.Header)
	}
	return p.header
}

func (p *headerProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

func (p *headerProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
