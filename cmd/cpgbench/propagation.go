package main

import (
	"context"
	"fmt"
	"os"
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

func variantNamed(name string) (joinVariant, bool) {
	for _, v := range joinVariants {
		if v.name == name {
			return v, true
		}
	}
	return joinVariant{}, false
}

// joiners are the two ways w2's node A makes its joins: "embedded", a
// registry node in a Go program calling Scope.Join (as pg's node A calls
// pg:join), and "http", a cpgd agent taking one HTTP request per join from
// one sequential client.
var joiners = []string{"embedded", "http"}

// runPropagation is w2: node A makes the joins, one at a time; every other
// node's watch stream reports them.
func runPropagation(t *table, sizes []int, trials int, only string) error {
	for _, joiner := range joiners {
		if only != "" && only != joiner {
			continue
		}
		for _, size := range sizes {
			for _, v := range joinVariants {
				for trial := range trials {
					if err := propagationTrial(t, joiner, size, v, trial); err != nil {
						return fmt.Errorf("w2 %s %dn %s: %w", joiner, size, v.name, err)
					}
				}
			}
		}
	}
	return nil
}

func propagationTrial(t *table, joiner string, size int, v joinVariant, trial int) error {
	agents := size
	if joiner == "embedded" {
		agents--
	}
	c, err := proctest.Start(proctest.Config{Nodes: agents, GossipProfile: *profile})
	if err != nil {
		return err
	}
	defer c.Close()
	var embedded *embeddedNode
	observers := c.Nodes[1:]
	if joiner == "embedded" {
		if embedded, err = startEmbeddedNode(c); err != nil {
			return err
		}
		defer embedded.close()
		observers = c.Nodes
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scope := fmt.Sprintf("w2-%d", trial)
	// A scope exists on a node once something joined it there (reads never
	// create one); as pg's benchmark does, each node joins a ready member
	// of its own first.
	for _, o := range observers {
		if err := o.Join(ctx, scope, "/ready", "ready-"+o.Name); err != nil {
			return err
		}
	}
	streams := make([]<-chan proctest.Event, len(observers))
	for i, o := range observers {
		if streams[i], err = o.Watch(ctx, scope, "/bench/*"); err != nil {
			return err
		}
	}
	// Every observer's arrivals, collected while the joins run.
	// applied is when the observer applied each join (from its stream:
	// when its lookups began to show it, as pg's observers stamp); read
	// is when this process read it from the stream.
	type seen struct {
		applied, read map[string]time.Time
		overflow      bool
	}
	results := make(chan seen, len(observers))
	for _, s := range streams {
		go func() {
			got := seen{applied: make(map[string]time.Time, v.joins), read: make(map[string]time.Time, v.joins)}
			for ev := range s {
				if ev.Kind == "overflow" {
					got.overflow = true
					break
				}
				if ev.Kind == "join" {
					got.applied[ev.Member.ID] = ev.Applied
					got.read[ev.Member.ID] = ev.At
					if len(got.applied) == v.joins {
						break
					}
				}
			}
			results <- got
		}()
	}

	graftsBefore, err := graftsSent(ctx, c.Nodes)
	if err != nil {
		return err
	}
	var called, returned []time.Time
	if embedded != nil {
		if called, returned, err = embedded.joins(scope, v); err != nil {
			return err
		}
	} else if called, returned, err = httpJoins(ctx, c.Nodes[0], scope, v); err != nil {
		return err
	}
	joinTime := returned[v.joins-1].Sub(called[0])

	var fromCall, fromReturn []time.Duration
	var last, lastRead time.Time
	timeout := time.After(60 * time.Second)
	w := fmt.Sprintf("W2 %dn %s (%s A)", size, v.name, joiner)
	for range observers {
		select {
		case got := <-results:
			if len(got.applied) != v.joins {
				return fmt.Errorf("an observer saw %d of %d joins (its watch overflowed: %v)", len(got.applied), v.joins, got.overflow)
			}
			for _, at := range got.read {
				if at.After(lastRead) {
					lastRead = at
				}
			}
			for i := range v.joins {
				at := got.applied[fmt.Sprintf("m%d", i)]
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
	graftsAfter, err := graftsSent(ctx, c.Nodes)
	if err != nil {
		return err
	}
	slices.Sort(fromCall)
	slices.Sort(fromReturn)
	t.add(w, "join rate on A", "joins/s", float64(v.joins)/joinTime.Seconds())
	for _, p := range []float64{50, 90, 99} {
		t.add(w, fmt.Sprintf("latency p%.0f", p), "us after join returned", us(percentile(fromReturn, p)))
	}
	t.add(w, "latency max", "us after join returned", us(fromReturn[len(fromReturn)-1]))
	t.add(w, "latency p50", "us after join called", us(percentile(fromCall, 50)))
	t.add(w, "latency p99", "us after join called", us(percentile(fromCall, 99)))
	t.add(w, "all visible on all nodes", "ms after 1st join call", ms(last.Sub(called[0])))
	t.add(w, "all visible on all nodes", "ms after last join returned", ms(last.Sub(returned[v.joins-1])))
	t.add(w, "all read from the observers' streams", "ms after 1st join call", ms(lastRead.Sub(called[0])))
	// A trial that waited for a graft says so: the median row hides it.
	t.add(w, "grafts sent by the agents during the trial", "grafts", float64(graftsAfter-graftsBefore))
	fmt.Fprintf(os.Stderr, "%s trial %d: all visible %.1f ms after the 1st join call, %d grafts\n",
		w, trial, ms(last.Sub(called[0])), graftsAfter-graftsBefore)
	return nil
}

// httpJoins makes the joins through a node's API, one request at a time.
func httpJoins(ctx context.Context, a *proctest.Node, scope string, v joinVariant) (called, returned []time.Time, err error) {
	called = make([]time.Time, v.joins)
	returned = make([]time.Time, v.joins)
	begin := time.Now()
	for i := range v.joins {
		if v.pace > 0 {
			time.Sleep(time.Until(begin.Add(time.Duration(i) * v.pace)))
		}
		called[i] = time.Now()
		if err := a.Join(ctx, scope, v.group(i), fmt.Sprintf("m%d", i)); err != nil {
			return nil, nil, err
		}
		returned[i] = time.Now()
	}
	return called, returned, nil
}
