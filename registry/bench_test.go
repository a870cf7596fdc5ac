package registry

import (
	"fmt"
	"runtime"
	"testing"
)

// The workloads mirror OTP pg's W1 (../shared/peers/erlang-pg in the
// project's sibling folder): 10,000 members, member i in group
// /svc/<i mod 1000>/x, one caller; lookups of pseudo-random groups.

const (
	w1Members = 10000
	w1Groups  = 1000
)

type w1 struct {
	groups  []string // per member
	members []string
	names   []string // the 1,000 group names
}

func newW1() *w1 {
	w := &w1{}
	for g := range w1Groups {
		w.names = append(w.names, fmt.Sprintf("/svc/%d/x", g))
	}
	for i := range w1Members {
		w.groups = append(w.groups, w.names[i%w1Groups])
		w.members = append(w.members, fmt.Sprintf("m%d", i))
	}
	return w
}

func benchNode(b *testing.B) *Scope {
	n, err := New(Config{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n.Default()
}

// BenchmarkJoin: one op is one join; every 10,000 joins the members leave
// again with the timer stopped, so every join lands in the same state.
func BenchmarkJoin(b *testing.B) {
	joinLoop(b, benchNode(b), newW1())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "joins/s")
}

// BenchmarkJoinClustered is BenchmarkJoin on a node that runs a cluster
// (alone in it): each join is also queued for the broadcast, which takes
// the queue, encodes it and sends it to no one.
func BenchmarkJoinClustered(b *testing.B) {
	n := startClusterNodes(b, 1)[0]
	b.ReportAllocs()
	joinLoop(b, n.Default(), newW1())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "joins/s")
}

// joinLoop makes one join per b.Loop; every 10,000 joins the members
// leave again with the timer stopped, so every join lands in the same
// state.
func joinLoop(b *testing.B, s *Scope, w *w1) {
	i := 0
	for b.Loop() {
		if err := s.Join(w.groups[i], w.members[i], nil); err != nil {
			b.Fatal(err)
		}
		if i++; i == w1Members {
			b.StopTimer()
			for j := range w1Members {
				_ = s.Leave(w.groups[j], w.members[j])
			}
			i = 0
			b.StartTimer()
		}
	}
}

// BenchmarkLeave: one op is one leave, the joins refilled with the timer
// stopped.
func BenchmarkLeave(b *testing.B) {
	w := newW1()
	s := benchNode(b)
	fill := func() {
		for j := range w1Members {
			_ = s.Join(w.groups[j], w.members[j], nil)
		}
	}
	fill()
	i := 0
	for b.Loop() {
		if err := s.Leave(w.groups[i], w.members[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == w1Members {
			b.StopTimer()
			fill()
			i = 0
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

func joinedW1(b *testing.B) (*w1, *Scope) {
	w := newW1()
	s := benchNode(b)
	for i := range w1Members {
		if err := s.Join(w.groups[i], w.members[i], nil); err != nil {
			b.Fatal(err)
		}
	}
	return w, s
}

// nextGroup is the Park-Miller generator pg's benchmark uses to pick groups.
func nextGroup(state *uint64) int {
	*state = *state * 48271 % 2147483647
	return int(*state % w1Groups)
}

// BenchmarkLookup runs Members on pseudo-random groups. With -cpu 1,2 it
// measures one caller and two callers at once (RunParallel starts one
// caller per GOMAXPROCS).
func BenchmarkLookup(b *testing.B) {
	w, s := joinedW1(b)
	b.RunParallel(func(pb *testing.PB) {
		state := uint64(42)
		for pb.Next() {
			g, err := s.Members(w.names[nextGroup(&state)])
			if err != nil || len(g.Members) != 10 {
				panic(fmt.Sprint("bad lookup ", err))
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkLookupLocal is BenchmarkLookup with LocalMembers.
func BenchmarkLookupLocal(b *testing.B) {
	w, s := joinedW1(b)
	b.RunParallel(func(pb *testing.PB) {
		state := uint64(42)
		for pb.Next() {
			g, err := s.LocalMembers(w.names[nextGroup(&state)])
			if err != nil || len(g.Members) != 10 {
				panic(fmt.Sprint("bad lookup ", err))
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkLookupPattern: 10,000 stored patterns of several shapes, and
// lookups of concrete names that only patterns match.
func BenchmarkLookupPattern(b *testing.B) {
	s := benchNode(b)
	const patterns = 10000
	var names []string
	for i := range patterns {
		var key, name string
		switch i % 4 {
		case 0:
			key, name = fmt.Sprintf("/svc/%d/*", i), fmt.Sprintf("/svc/%d/eu/db", i)
		case 1:
			key, name = fmt.Sprintf("/svc/%d/?/db", i), fmt.Sprintf("/svc/%d/us/db", i)
		case 2:
			key, name = fmt.Sprintf("/region/*/svc%d", i), fmt.Sprintf("/region/eu-west/svc%d", i)
		case 3:
			key, name = fmt.Sprintf("/*/job%d/?/x", i), fmt.Sprintf("/batch/job%d/7/x", i)
		}
		if err := s.Join(key, "m", nil); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
	for _, name := range names {
		if _, err := s.Members(name); err != nil {
			b.Fatal(err)
		}
	}
	state := uint64(42)
	for b.Loop() {
		state = state * 48271 % 2147483647
		if _, err := s.Members(names[state%patterns]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemory reports the heap held per membership at 1,000,000
// memberships (100,000 groups of 10, no metadata), after every group's
// lookup snapshot has been built: the state a node serving lookups holds.
func BenchmarkMemory(b *testing.B) {
	const groups, perGroup = 100000, 10
	for b.Loop() {
		// Group names are made after the first reading: the registry holds
		// them, so they count.
		before := heapInUse()
		names := make([]string, groups)
		for g := range names {
			names[g] = fmt.Sprintf("/svc/%d/x", g)
		}
		n, err := New(Config{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		s := n.Default()
		for i := range groups * perGroup {
			if err := s.Join(names[i%groups], fmt.Sprintf("m%d", i), nil); err != nil {
				b.Fatal(err)
			}
		}
		joined := heapInUse()
		for _, name := range names {
			if _, err := s.Members(name); err != nil {
				b.Fatal(err)
			}
		}
		after := heapInUse()
		b.ReportMetric(float64(joined-before)/(groups*perGroup), "B/membership-state")
		b.ReportMetric(float64(after-before)/(groups*perGroup), "B/membership")
		runtime.KeepAlive(n)
		runtime.KeepAlive(names)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
