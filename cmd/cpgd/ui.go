package main

import (
	"embed"
	"net/http"
	"path"
)

// uiFiles is the status page: plain HTML, JS and CSS, embedded so that the
// binary serves it with no build step and nothing fetched from elsewhere.
//
//go:embed ui/index.html ui/app.js ui/style.css
var uiFiles embed.FS

// uiSecurityPolicy keeps the page to what it needs: its own scripts, styles
// and API, nothing inline (so injected markup cannot run), no framing, no
// form posting elsewhere.
const uiSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiContentTypes lists every file the page is made of; any other path is
// not found, so the routes never list or serve anything else.
var uiContentTypes = map[string]string{
	"index.html": "text/html; charset=utf-8",
	"app.js":     "text/javascript; charset=utf-8",
	"style.css":  "text/css; charset=utf-8",
}

// uiRoutes serves the status page at / and its assets under /ui/. The page
// reads the /v1 API of the agent that served it, so its calls are
// same-origin and carry the bearer token the user typed, like any client.
func (a *api) uiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { serveUIFile(w, r, "index.html") })
	mux.HandleFunc("GET /ui/{file}", func(w http.ResponseWriter, r *http.Request) { serveUIFile(w, r, r.PathValue("file")) })
}

func serveUIFile(w http.ResponseWriter, r *http.Request, name string) {
	contentType, ok := uiContentTypes[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody{"no such file of the status page: " + name})
		return
	}
	body, err := uiFiles.ReadFile(path.Join("ui", name))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{"status page: " + err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", uiSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// The files change only with the binary; no-cache still lets the
	// browser revalidate after an upgrade instead of running an old script
	// against a new API.
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
