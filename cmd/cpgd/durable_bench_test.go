package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cpggo/cpg/registry"
)

// BenchmarkDurableJoins measures joins through the HTTP API, each written
// and fsynced before its answer, with 64 concurrent keep-alive clients
// against one agent on loopback (in this process):
//
//	go test ./cmd/cpgd -run '^$' -bench DurableJoins -benchtime 100000x
func BenchmarkDurableJoins(b *testing.B) {
	const clients = 64
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--name", "bench", "--http", "127.0.0.1:0", "--data-dir", b.TempDir(), "--log-level", "warn"}, ready)
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		b.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	var next atomic.Int64
	// RunParallel runs parallelism × GOMAXPROCS goroutines.
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := next.Add(1)
		for i := 0; pb.Next(); i++ {
			body := fmt.Sprintf(`{"group":"/bench/%d","member":"m-%d-%d"}`, c%64, c, i)
			req, _ := http.NewRequest("POST", base+"/v1/scopes/default/join", bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("join: %s", resp.Status)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "joins/s")
}

// BenchmarkDurableApply measures the durable path alone, without HTTP: 64
// goroutines each making joins through applyChange's store and registry
// steps, so the store's group commit is what limits them:
//
//	go test ./cmd/cpgd -run '^$' -bench DurableApply -benchtime 100000x
func BenchmarkDurableApply(b *testing.B) {
	const clients = 64
	st, node := openBenchStore(b)
	d := newDurable(st, node, slog.New(slog.DiscardHandler))
	scope := node.Default()
	var next atomic.Int64
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start, cpuStart := time.Now(), processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		c := next.Add(1)
		for i := 0; pb.Next(); i++ {
			if _, err := d.apply(change{kind: changeJoin, scope: scope, group: fmt.Sprintf("/bench/%d", c), member: fmt.Sprintf("m-%d", i)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed, cpu := time.Since(start), processCPU(b)-cpuStart
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "joins/s")
	// The process's CPU (user and system, the kernel's share of the writes
	// and syncs included) per join: what the store costs, whatever the
	// disk's speed, which the joins per second mostly follow.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/join")
	b.ReportMetric(float64(st.writes.Load())/float64(st.commits.Load()), "joins/fsync")
}

// openBenchStore opens a store in a fresh directory and a node of its
// own, both closed when the benchmark ends.
func openBenchStore(b *testing.B) (*store, *registry.Node) {
	st, err := openStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.close() })
	node, err := registry.New(registry.Config{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { node.Close() })
	return st, node
}

// processCPU is the user and system time this process has used.
func processCPU(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// BenchmarkHandlerDurableJoin measures a join through the agent's HTTP
// handler and its durable store, without the network: 64 goroutines each
// serving join requests (new members, one group each), every join written
// and fsynced by the group commit before its answer. The allocations
// include each request's own (its body reader):
//
//	go test ./cmd/cpgd -run '^$' -bench HandlerDurableJoin -benchmem -benchtime 100000x
func BenchmarkHandlerDurableJoin(b *testing.B) {
	const clients = 64
	st, node := openBenchStore(b)
	log := slog.New(slog.DiscardHandler)
	a := &api{node: node, log: log, cfg: &agentConfig{apiLimits: apiLimits{maxBody: defaultMaxBody}}, durable: newDurable(st, node, log)}
	h := a.handler()
	var next atomic.Int64
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		c := next.Add(1)
		req := httptest.NewRequest("POST", "/v1/scopes/default/join", nil)
		req.Host = "127.0.0.1" // as a client on loopback sends it
		req.Header.Set("Content-Type", "application/json")
		w := &discardWriter{header: http.Header{}}
		var body []byte
		var reader bytes.Reader
		for i := 0; pb.Next(); i++ {
			body = fmt.Appendf(body[:0], `{"group":"/bench/%d","member":"m-%d"}`, c, i)
			reader.Reset(body)
			req.Body, req.ContentLength = io.NopCloser(&reader), int64(len(body))
			clear(w.header)
			w.code = 0
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK {
				b.Errorf("join: status %d", w.code)
				return
			}
		}
	})
	elapsed, cpu := time.Since(start), processCPU(b)-cpuStart
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "joins/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/join")
}

// BenchmarkCommitGroup measures the store's serial step alone: the commit
// loop's turn for a group of 32 joins of new members, without the fsyncs
// (bbolt's NoSync), which the disk's speed would drown. Each client's own
// part (working its change out, under the member's lock) is left out of
// the timing, as it runs beside the commit loop, not in it:
//
//	go test ./cmd/cpgd -run '^$' -bench CommitGroup -benchmem
func BenchmarkCommitGroup(b *testing.B) {
	const group = 32
	st, node := openBenchStore(b)
	st.db.NoSync = true
	scope := node.Default()
	writes := make([]storeWrite, group)
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		b.StopTimer()
		for i := range writes {
			c := change{kind: changeJoin, scope: scope, group: fmt.Sprintf("/bench/%d", i), member: fmt.Sprintf("m-%d", n)}
			w := &changeWrite{c: c, k: memberKey{scope.Name(), c.group, c.member}, now: time.Now()}
			if err := w.prepare(&st.index); err != nil {
				b.Fatal(err)
			}
			writes[i] = storeWrite{w: w}
		}
		b.StartTimer()
		st.commitGroup(writes)
		for i := range writes {
			if writes[i].err != nil {
				b.Fatal(writes[i].err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*group), "ns/join")
}
