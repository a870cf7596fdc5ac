package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// queryParams names the query parameters a route takes; the value says
// whether the parameter may be given more than once.
type queryParams map[string]bool

// readQuery parses the request's query string strictly: a malformed piece,
// an unknown parameter or a single-valued one given twice is answered with
// 400 naming the parameter, so a typo never silently changes a request.
func readQuery(w http.ResponseWriter, r *http.Request, allowed queryParams) (url.Values, bool) {
	q, err := parseQuery(r.URL.RawQuery, allowed)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return nil, false
	}
	return q, true
}

func parseQuery(raw string, allowed queryParams) (url.Values, error) {
	if err := checkQuery(raw); err != nil {
		return nil, err
	}
	q := url.Values{}
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(piece, "=")
		// checkQuery passed: unescaping cannot fail.
		key, _ := url.QueryUnescape(rawKey)
		value, _ := url.QueryUnescape(rawValue)
		repeats, ok := allowed[key]
		if !ok {
			return nil, fmt.Errorf("unknown query parameter %q (%s)", key, allowed.describe())
		}
		if !repeats && q.Has(key) {
			return nil, fmt.Errorf("query parameter %q given more than once", key)
		}
		q.Add(key, value)
	}
	return q, nil
}

// checkQuery checks the query string of any request, whatever its route:
// a malformed one is refused before a handler reads it. A well-formed one
// (every request but an attacker's) costs one scan and no allocation; only
// a malformed one is taken apart, to say which parameter is wrong.
func checkQuery(raw string) error {
	if wellFormedQuery(raw) {
		return nil
	}
	return checkPieces(raw)
}

// checkPieces checks each piece of raw, and says what is wrong with the
// first bad one.
func checkPieces(raw string) error {
	for piece := range strings.SplitSeq(raw, "&") {
		rawKey, rawValue, _ := strings.Cut(piece, "=")
		if err := checkPiece(rawKey, rawValue); err != nil {
			return err
		}
	}
	return nil
}

// wellFormedQuery reports whether checkPiece accepts every piece of raw:
// no ';', and every '%' followed by two hex digits (the only escape
// url.QueryUnescape refuses).
func wellFormedQuery(raw string) bool {
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// checkPiece checks one name=value of a query string. A raw ';' is
// refused: some servers and proxies split parameters on it and others do
// not, so its meaning is ambiguous (a value holding one sends %3B).
func checkPiece(rawKey, rawValue string) error {
	key, err := url.QueryUnescape(rawKey)
	if err != nil {
		return fmt.Errorf("query parameter %q: malformed name: %v", rawKey, err)
	}
	if strings.Contains(rawKey, ";") || strings.Contains(rawValue, ";") {
		return fmt.Errorf("query parameter %q: ';' does not separate parameters, '&' does (send a ';' in a value as %%3B)", key)
	}
	if _, err := url.QueryUnescape(rawValue); err != nil {
		return fmt.Errorf("query parameter %q: malformed value: %v", key, err)
	}
	return nil
}

func (p queryParams) describe() string {
	if len(p) == 0 {
		return "this call takes none"
	}
	names := make([]string, 0, len(p))
	for name := range p {
		names = append(names, name)
	}
	slices.Sort(names)
	return "this call takes " + strings.Join(names, ", ")
}

// readQueryNone refuses any query parameter on a call that takes none.
func readQueryNone(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.RawQuery == "" {
		return true
	}
	_, ok := readQuery(w, r, nil)
	return ok
}
