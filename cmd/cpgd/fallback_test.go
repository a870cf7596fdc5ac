package main

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cpggo/cpg/registry"
)

// The catch-all answers unmatched requests with the status and Allow
// header the mux itself gives, in JSON.
func TestFallbackAnswersAsTheMux(t *testing.T) {
	node, err := registry.New(registry.Config{Name: "n"})
	require.NoError(t, err)
	defer node.Close()
	a := &api{node: node, log: slog.New(slog.DiscardHandler), cfg: &agentConfig{}}
	plain := a.routes()
	fallback := jsonFallback(a.routes())
	for _, c := range []struct{ method, path string }{
		{"PUT", "/v1/leases/abc"}, {"POST", "/v1/scopes"}, {"DELETE", "/v1/scopes/default/join"},
		{"GET", "/v1/scopes/default/join"}, {"PATCH", "/livez"}, {"GET", "/nowhere"}, {"POST", "/v1/nowhere"},
		{"OPTIONS", "/ui/index.html"}, {"POST", "/"},
	} {
		want := httptest.NewRecorder()
		plain.ServeHTTP(want, httptest.NewRequest(c.method, c.path, nil))
		got := httptest.NewRecorder()
		fallback.ServeHTTP(got, httptest.NewRequest(c.method, c.path, nil))
		require.Equal(t, want.Code, got.Code, "%s %s", c.method, c.path)
		require.Equal(t, want.Header().Get("Allow"), got.Header().Get("Allow"), "%s %s", c.method, c.path)
		require.Equal(t, "application/json", got.Header().Get("Content-Type"), "%s %s", c.method, c.path)
	}
}
