package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// jsonFallback answers, in JSON like every other error, what the mux would
// answer in plain text: 404 for an unknown path and 405 (with Allow) for a
// known path with another method. A path that is not in canonical form
// ("//", "/./", "/../") is a 404 too, where the mux would redirect: a
// client of an API wants the error, not a redirect its POST may not follow.
//
// It registers a catch-all pattern on mux, so a request is routed once:
// the catch-all is the least specific pattern, and only a request no route
// takes reaches it. Only then are the allowed methods worked out, by
// asking the mux which route each method would reach.
func jsonFallback(mux *http.ServeMux) http.Handler {
	mux.HandleFunc(fallbackPattern, func(w http.ResponseWriter, r *http.Request) {
		// The request metrics label by the pattern the mux matched: an
		// unmatched request must not be counted under the catch-all's.
		r.Pattern = ""
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			list := strings.Join(allow, ", ")
			w.Header().Set("Allow", list)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, list)})
			return
		}
		writeJSON(w, http.StatusNotFound, errorBody{fmt.Sprintf("no such path %q", r.URL.Path)})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !canonicalPath(r.URL.Path) {
			writeJSON(w, http.StatusNotFound, errorBody{fmt.Sprintf("no such path %q (not in canonical form)", r.URL.Path)})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// fallbackPattern matches every method and path, and loses to any other
// pattern that matches.
const fallbackPattern = "/"

// probedMethods are the methods a 405's Allow header may list.
var probedMethods = []string{
	http.MethodConnect, http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
	http.MethodPatch, http.MethodPost, http.MethodPut, http.MethodTrace,
}

// allowedMethods lists, sorted as the mux lists them, the methods for which
// a route other than the catch-all takes r's path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range probedMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != fallbackPattern {
			allow = append(allow, m)
		}
	}
	slices.Sort(allow)
	return allow
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
