package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cpggo/cpg/internal/proctest"
)

// joinVariant is one shape of w2: how many joins, into which group, and
// how far apart.
type joinVariant struct {
	name  string
	joins int
	group func(i int) string
	pace  time.Duration // 0: back to back
}

var joinVariants = []joinVariant{
	{"one_group", 2000, func(int) string { return "/bench/one" }, 0},
	{"groups_200", 2000, func(i int) string { return fmt.Sprintf("/bench/%d", i%200) }, 0},
	{"paced", 500, func(int) string { return "/bench/one" }, 2 * time.Millisecond},
}

// runPropagation is w2: node 1 makes the joins through its API, one at a
// time; every other node's watch stream reports them.
func runPropagation(t *table, sizes []int, trials int) error {
	for _, size := range sizes {
		for _, v := range joinVariants {
			for trial := range trials {
				if err := propagationTrial(t, size, v, trial); err != nil {
					return fmt.Errorf("w2 %dn %s: %w", size, v.name, err)
				}
			}
		}
	}
	return nil
}

func propagationTrial(t *table, size int, v joinVariant, trial int) error {
	c, err := proctest.Start(proctest.Config{Nodes: size, GossipProfile: *profile})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scope := fmt.Sprintf("w2-%d", trial)
	observers := c.Nodes[1:]
	streams := make([]<-chan proctest.Event, len(observers))
	for i, o := range observers {
		if streams[i], err = o.Watch(ctx, scope, "/bench/*"); err != nil {
			return err
		}
	}
	// Every observer's arrivals, collected while the joins run.
	type seen struct {
		at       map[string]time.Time
		overflow bool
	}
	results := make(chan seen, len(observers))
	for _, s := range streams {
		go func() {
			got := seen{at: make(map[string]time.Time, v.joins)}
			for ev := range s {
				if ev.Kind == "overflow" {
					got.overflow = true
					break
				}
				if ev.Kind == "join" {
					got.at[ev.Member.ID] = ev.At
					if len(got.at) == v.joins {
						break
					}
				}
			}
			results <- got
		}()
	}

	a := c.Nodes[0]
	called := make([]time.Time, v.joins)
	returned := make([]time.Time, v.joins)
	begin := time.Now()
	for i := range v.joins {
		if v.pace > 0 {
			time.Sleep(time.Until(begin.Add(time.Duration(i) * v.pace)))
		}
		called[i] = time.Now()
		if err := a.Join(ctx, scope, v.group(i), fmt.Sprintf("m%d", i)); err != nil {
			return err
		}
		returned[i] = time.Now()
	}
	joinTime := returned[v.joins-1].Sub(called[0])

	var fromCall, fromReturn []time.Duration
	var last time.Time
	timeout := time.After(60 * time.Second)
	w := fmt.Sprintf("W2 %dn %s", size, v.name)
	for range observers {
		select {
		case got := <-results:
			if got.overflow {
				t.note(w, "watch overflowed", "yes")
			}
			if len(got.at) != v.joins {
				return fmt.Errorf("an observer saw %d of %d joins", len(got.at), v.joins)
			}
			for i := range v.joins {
				at := got.at[fmt.Sprintf("m%d", i)]
				fromCall = append(fromCall, at.Sub(called[i]))
				fromReturn = append(fromReturn, at.Sub(returned[i]))
				if at.After(last) {
					last = at
				}
			}
		case <-timeout:
			return fmt.Errorf("the joins did not all arrive within 60 s")
		}
	}
	slices.Sort(fromCall)
	slices.Sort(fromReturn)
	t.add(w, "join rate on A (one HTTP client, sequential)", "joins/s", float64(v.joins)/joinTime.Seconds())
	for _, p := range []float64{50, 90, 99} {
		t.add(w, fmt.Sprintf("latency p%.0f", p), "us after join returned", us(percentile(fromReturn, p)))
	}
	t.add(w, "latency max", "us after join returned", us(fromReturn[len(fromReturn)-1]))
	t.add(w, "latency p50", "us after join called", us(percentile(fromCall, 50)))
	t.add(w, "latency p99", "us after join called", us(percentile(fromCall, 99)))
	t.add(w, "all visible on all nodes", "ms after 1st join call", ms(last.Sub(called[0])))
	t.add(w, "all visible on all nodes", "ms after last join returned", ms(last.Sub(returned[v.joins-1])))
	return nil
}
