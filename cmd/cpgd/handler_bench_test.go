package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cpggo/cpg/registry"
)

// benchAPI is an agent's HTTP handler over a node holding 1,000 groups of
// 10 members, as the load benchmark (cmd/cpgload) fills it.
func benchAPI(b *testing.B) (http.Handler, func(g int) string) {
	node, err := registry.New(registry.Config{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { node.Close() })
	group := func(g int) string { return fmt.Sprintf("/svc/%d/x", g) }
	for i := range 10_000 {
		if err := node.Default().Join(group(i%1000), fmt.Sprintf("m%d", i), nil); err != nil {
			b.Fatal(err)
		}
	}
	a := &api{node: node, log: slog.New(slog.DiscardHandler), cfg: &agentConfig{}}
	return a.handler(), group
}

// The handlers' own cost per lookup and pick, without the network: what
// the profile of the lookup path points at (go test -bench Handler
// -benchmem -cpuprofile cpu.out ./cmd/cpgd/).
func BenchmarkHandlerMembers(b *testing.B) {
	h, group := benchAPI(b)
	reqs := make([]*http.Request, 1000)
	for g := range reqs {
		reqs[g] = httptest.NewRequest("GET", "/v1/scopes/default/members?name="+group(g), nil)
	}
	benchHandler(b, h, reqs)
}

func BenchmarkHandlerPick(b *testing.B) {
	h, group := benchAPI(b)
	reqs := make([]*http.Request, 1000)
	for g := range reqs {
		reqs[g] = httptest.NewRequest("GET", "/v1/scopes/default/pick?strategy=random&name="+group(g), nil)
	}
	benchHandler(b, h, reqs)
}

func benchHandler(b *testing.B, h http.Handler, reqs []*http.Request) {
	for _, r := range reqs {
		r.Host = "127.0.0.1" // as a client on loopback sends it; the guard refuses others
	}
	w := &discardWriter{header: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		clear(w.header)
		w.code = 0
		h.ServeHTTP(w, reqs[i%len(reqs)])
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing but the status, so
// that the benchmark measures the handler and not a recorder.
type discardWriter struct {
	header http.Header
	code   int
}

func (d *discardWriter) Header() http.Header { return d.header }
func (d *discardWriter) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}
func (d *discardWriter) Write(p []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	return len(p), nil
}
