package main

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// sample is what one run of a workload measured.
type sample struct {
	ops      int64
	elapsed  time.Duration
	p50, p99 time.Duration
	// agentCPU is the agent process's CPU time (user and system) over the
	// measured time: per request, the figure least disturbed by whatever
	// else runs on the machine.
	agentCPU time.Duration
	// note adds what the workload saw beside (watch events, cut streams).
	note string
}

func (s sample) perSecond() float64 { return float64(s.ops) / s.elapsed.Seconds() }

func (s sample) cpuPerOp() time.Duration {
	if s.ops == 0 {
		return 0
	}
	return s.agentCPU / time.Duration(s.ops)
}

func (s sample) String() string {
	out := fmt.Sprintf("%.0f/s, p50 %v, p99 %v", s.perSecond(), s.p50, s.p99)
	if s.agentCPU > 0 {
		out += fmt.Sprintf(", agent CPU %v/request", s.cpuPerOp())
	}
	if s.note != "" {
		out += "; " + s.note
	}
	return out
}

// closedLoop runs clients that each call op back to back for warmup, then
// for duration while their latencies are recorded. op gets the client's
// number and a counter of its calls; an error ends the run. cpu, if not
// nil, reads the agent's CPU time.
func closedLoop(clients int, warmup, duration time.Duration, cpu func() time.Duration, op func(client int, i int) error) (sample, error) {
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		wg        sync.WaitGroup
		firstErr  error
		errOnce   sync.Once
	)
	lat := make([][]time.Duration, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := make([]time.Duration, 0, 1<<16)
			for i := 0; !stop.Load(); i++ {
				t0 := time.Now()
				if err := op(c, i); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					break
				}
				if measuring.Load() {
					own = append(own, time.Since(t0))
				}
			}
			lat[c] = own
		}()
	}
	time.Sleep(warmup)
	var cpu0, cpu1 time.Duration
	if cpu != nil {
		cpu0 = cpu()
	}
	measuring.Store(true)
	start := time.Now()
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	if cpu != nil {
		cpu1 = cpu()
	}
	stop.Store(true)
	wg.Wait()
	if firstErr != nil {
		return sample{}, firstErr
	}
	s := summarize(lat, elapsed)
	s.agentCPU = cpu1 - cpu0
	return s, nil
}

func summarize(lat [][]time.Duration, elapsed time.Duration) sample {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	s := sample{ops: int64(len(all)), elapsed: elapsed}
	if len(all) > 0 {
		s.p50 = all[len(all)/2]
		s.p99 = all[len(all)*99/100]
	}
	return s
}
