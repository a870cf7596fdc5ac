package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// guard checks every request before it reaches a route, in this order:
//
//  1. Host: a name the API answers to (DNS rebinding: a page of
//     evil.example whose name now resolves to 127.0.0.1 still sends
//     "Host: evil.example"), else 403;
//  2. browser origin: a request a page of another origin made (its Origin
//     header, or Sec-Fetch-Site) is refused with 403, so no web page can
//     drive a local cpgd;
//  3. the bearer token, when one is set, on /v1 and /metrics, else 401;
//  4. a malformed query string, else 400;
//  5. a body must be JSON (415) and within --max-body (413).
func (a *api) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r.Host) {
			writeJSON(w, http.StatusForbidden, errorBody{fmt.Sprintf("host %q is not one this API answers to (see --allowed-hosts)", r.Host)})
			return
		}
		if reason := crossOrigin(r); reason != "" {
			writeJSON(w, http.StatusForbidden, errorBody{"cross-origin request refused: " + reason})
			return
		}
		if a.cfg.token != "" && needsToken(r.URL.Path) && !a.tokenMatches(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cpgd"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{"missing or wrong bearer token (Authorization: Bearer <token>)"})
			return
		}
		if err := checkQuery(r.URL.RawQuery); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
			return
		}
		if hasBody(r) {
			if reason := notJSON(r.Header.Get("Content-Type")); reason != "" {
				writeJSON(w, http.StatusUnsupportedMediaType, errorBody{reason})
				return
			}
			if r.ContentLength > a.cfg.maxBody {
				writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{fmt.Sprintf("body of %d bytes, larger than %d", r.ContentLength, a.cfg.maxBody)})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, a.cfg.maxBody)
		}
		h.ServeHTTP(w, r)
	})
}

// needsToken: the registry API and the metrics (they name scopes and
// nodes) need the token; liveness, readiness and the status page do not.
func needsToken(path string) bool {
	return path == "/v1" || strings.HasPrefix(path, "/v1/") || path == "/metrics"
}

// tokenMatches compares in constant time; hashing both sides first makes
// the time independent of the lengths too.
func (a *api) tokenMatches(header string) bool {
	scheme, given, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	want := sha256.Sum256([]byte(a.cfg.token))
	got := sha256.Sum256([]byte(strings.TrimSpace(given)))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// hostAllowed accepts the Host header of a request to this API: an IP
// literal (a DNS rebinding attack needs a name), localhost, or a name
// given with --allowed-hosts (with or without a port); for the first two
// the port must be the one the API listens on, when the header has one.
func (a *api) hostAllowed(hostport string) bool {
	host, port := hostport, ""
	// A Host without a port would make SplitHostPort build an error: the
	// common request must not allocate for its guard.
	if strings.IndexByte(hostport, ':') >= 0 {
		if h, p, err := net.SplitHostPort(hostport); err == nil {
			host, port = h, p
		}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, allowed := range a.cfg.allowedHosts {
		if strings.EqualFold(allowed, hostport) || strings.EqualFold(allowed, host) {
			return true
		}
	}
	if port != "" && port != a.listenPort {
		return false
	}
	if host == "localhost" {
		return true
	}
	_, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil
}

// crossOrigin returns why r comes from a web page of another origin, or "".
// Browsers send Origin on every cross-origin request that can change
// anything, and Sec-Fetch-Site on every request; tools such as curl send
// neither, so they are not affected.
func crossOrigin(r *http.Request) string {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "cross-site", "same-site":
		return "Sec-Fetch-Site: " + site
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Sprintf("Origin %q is not this API's", origin)
	}
	return ""
}

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// notJSON returns why a body of this content type is refused, or "".
// Requiring application/json also keeps out the "simple" requests
// (text/plain, forms) a browser sends to another origin without asking.
func notJSON(contentType string) string {
	switch contentType {
	case "":
		return "a body needs Content-Type: application/json"
	case "application/json":
		// What clients send, accepted without parsing it into a map.
		return ""
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return fmt.Sprintf("Content-Type %q: want application/json", contentType)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Sprintf("Content-Type %q: JSON is UTF-8", contentType)
	}
	return ""
}
