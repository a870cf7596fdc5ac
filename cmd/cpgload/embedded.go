package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cpggo/cpg/registry"
)

// embeddedBatch is how many lookups run between two clock reads: a lookup
// takes tens of nanoseconds, about what reading the clock does.
const embeddedBatch = 64

// embeddedLookups makes the lookups of the lookup workload through
// registry.Scope in this process: o.readers goroutines, the same groups.
// Its latencies are per lookup, averaged over batches of embeddedBatch
// (one figure per batch).
func embeddedLookups(o *options) (sample, error) {
	node, err := registry.New(registry.Config{Name: "load"})
	if err != nil {
		return sample{}, err
	}
	defer node.Close()
	scope := node.Default()
	names := make([]string, o.groups)
	for g := range names {
		names[g] = groupName(g)
	}
	for i := range o.groups * o.perGroup {
		if err := scope.Join(names[i%o.groups], fmt.Sprintf("m%d", i), nil); err != nil {
			return sample{}, err
		}
	}
	var measuring, stop atomic.Bool
	var wg sync.WaitGroup
	var failed atomic.Value
	lat := make([][]time.Duration, o.readers)
	for c := range o.readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			var own []time.Duration
			for !stop.Load() {
				t0 := time.Now()
				for range embeddedBatch {
					g, err := scope.Members(names[rng.IntN(len(names))])
					if err != nil || len(g.Members) != o.perGroup {
						failed.Store(fmt.Errorf("lookup: %v, %d members", err, len(g.Members)))
						stop.Store(true)
						return
					}
				}
				if measuring.Load() {
					own = append(own, time.Since(t0)/embeddedBatch)
				}
			}
			lat[c] = own
		}()
	}
	time.Sleep(o.warmup)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(o.duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return sample{}, err
	}
	s := summarize(lat, elapsed)
	s.ops *= embeddedBatch // one latency recorded per batch
	return s, nil
}
