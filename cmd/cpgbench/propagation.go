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
// node's watcher notes when it applied each. onlyJoiner and onlyObservers
// pick one of joiners and observerKinds (empty: each).
func runPropagation(t *table, sizes []int, trials int, onlyJoiner, onlyObservers string) error {
	for _, joiner := range joiners {
		if onlyJoiner != "" && onlyJoiner != joiner {
			continue
		}
		for _, kind := range observerKinds {
			if onlyObservers != "" && onlyObservers != kind {
				continue
			}
			for _, size := range sizes {
				for _, v := range joinVariants {
					for trial := range trials {
						if err := propagationTrial(t, joiner, kind, size, v, trial); err != nil {
							return fmt.Errorf("w2 %s A, %s observers, %dn %s: %w", joiner, kind, size, v.name, err)
						}
					}
				}
			}
		}
	}
	return nil
}

// w2Cluster is one trial's nodes: A and the observers, each an agent or
// an embedded node.
type w2Cluster struct {
	agents    *proctest.Cluster
	embedded  []*embeddedNode
	joiner    *embeddedNode // nil: A is agents.Nodes[0]
	observers []observer
}

func startW2Cluster(joiner, kind string, size int) (*w2Cluster, error) {
	w := &w2Cluster{}
	agents := 0
	if joiner == "http" {
		agents++
	}
	if kind == "agents" {
		agents += size - 1
	}
	seed := ""
	if agents > 0 {
		c, err := proctest.Start(proctest.Config{Nodes: agents, GossipProfile: *profile})
		if err != nil {
			return nil, err
		}
		w.agents = c
		seed = c.Nodes[0].Gossip
	}
	addEmbedded := func(name string) (*embeddedNode, error) {
		e, err := startEmbeddedNode(name, seed)
		if err != nil {
			return nil, err
		}
		w.embedded = append(w.embedded, e)
		if seed == "" {
			seed = e.gossip
		}
		return e, nil
	}
	if kind == "embedded" {
		for i := range size - 1 {
			e, err := addEmbedded(observerName(i))
			if err != nil {
				w.close()
				return nil, err
			}
			w.observers = append(w.observers, &embeddedObserver{node: e})
		}
	} else {
		nodes := w.agents.Nodes
		if joiner == "http" {
			nodes = nodes[1:]
		}
		for _, n := range nodes {
			w.observers = append(w.observers, &agentObserver{node: n})
		}
	}
	if joiner == "embedded" {
		e, err := addEmbedded(joinerName)
		if err != nil {
			w.close()
			return nil, err
		}
		w.joiner = e
	}
	var agentNodes []*proctest.Node
	if w.agents != nil {
		agentNodes = w.agents.Nodes
	}
	if err := waitAllAlive(agentNodes, w.embedded, size); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// grafts sums the grafts every node's broadcast has sent: a payload
// announced but not received in time is grafted, so a burst that waited
// for a graft shows here.
func (w *w2Cluster) grafts(ctx context.Context) (int64, error) {
	var total int64
	if w.agents != nil {
		n, err := graftsSent(ctx, w.agents.Nodes)
		if err != nil {
			return 0, err
		}
		total += n
	}
	for _, e := range w.embedded {
		r, err := e.ask(embeddedJob{Op: "grafts"})
		if err != nil {
			return 0, err
		}
		total += int64(r.Grafts)
	}
	return total, nil
}

func (w *w2Cluster) close() {
	for _, e := range w.embedded {
		e.close()
	}
	if w.agents != nil {
		w.agents.Close()
	}
}

func propagationTrial(t *table, joiner, kind string, size int, v joinVariant, trial int) error {
	w, err := startW2Cluster(joiner, kind, size)
	if err != nil {
		return err
	}
	defer w.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scope := fmt.Sprintf("w2-%d", trial)
	// Every node, A included, joins a ready member, and the trial starts
	// once every node sees all of them (pg's benchmark does the same) and
	// holds its overlay links (pg's connects every node to every other
	// first). Each node's ready job returns only then, so the jobs run
	// side by side.
	ready := make(chan error, size)
	go func() {
		if w.joiner != nil {
			ready <- w.joiner.ready(scope, size)
		} else {
			ready <- agentReady(ctx, w.agents.Nodes[0], scope, size)
		}
	}()
	for _, o := range w.observers {
		go func() { ready <- o.ready(ctx, scope, size) }()
	}
	for range size {
		if err := <-ready; err != nil {
			return err
		}
	}
	for _, o := range w.observers {
		if err := o.watch(ctx, scope, "/bench/*", v.joins); err != nil {
			return err
		}
	}
	graftsBefore, err := w.grafts(ctx)
	if err != nil {
		return err
	}
	var called, returned []time.Time
	if w.joiner != nil {
		err = w.joiner.joins(scope, v)
	} else {
		called, returned, err = httpJoins(ctx, w.agents.Nodes[0], scope, v)
	}
	if err != nil {
		return err
	}
	// What the nodes saw is fetched once every one of them has seen every
	// join, so that no answer competes with the nodes still at work.
	timeout := time.After(60 * time.Second)
	for _, o := range w.observers {
		if err := o.wait(timeout); err != nil {
			return err
		}
	}
	if w.joiner != nil {
		if called, returned, err = w.joiner.times(); err != nil {
			return err
		}
	}
	joinTime := returned[v.joins-1].Sub(called[0])

	var fromCall, fromReturn []time.Duration
	var last, lastRead time.Time
	for _, o := range w.observers {
		got, err := o.collect()
		if err != nil {
			return err
		}
		if len(got.applied) != v.joins {
			return fmt.Errorf("an observer saw %d of %d joins (its watch overflowed: %v)", len(got.applied), v.joins, got.overflow)
		}
		if got.lastRead.After(lastRead) {
			lastRead = got.lastRead
		}
		for i := range v.joins {
			at := got.applied[fmt.Sprintf("m%d", i)]
			fromCall = append(fromCall, at.Sub(called[i]))
			fromReturn = append(fromReturn, at.Sub(returned[i]))
			if at.After(last) {
				last = at
			}
		}
	}
	graftsAfter, err := w.grafts(ctx)
	if err != nil {
		return err
	}
	slices.Sort(fromCall)
	slices.Sort(fromReturn)
	name := fmt.Sprintf("W2 %dn %s (%s A)", size, v.name, joiner)
	if kind == "agents" {
		name = fmt.Sprintf("W2 %dn %s (%s A, agents watch over HTTP)", size, v.name, joiner)
	}
	t.add(name, "join rate on A", "joins/s", float64(v.joins)/joinTime.Seconds())
	for _, p := range []float64{50, 90, 99} {
		t.add(name, fmt.Sprintf("latency p%.0f", p), "us after join returned", us(percentile(fromReturn, p)))
	}
	t.add(name, "latency max", "us after join returned", us(fromReturn[len(fromReturn)-1]))
	t.add(name, "latency p50", "us after join called", us(percentile(fromCall, 50)))
	t.add(name, "latency p99", "us after join called", us(percentile(fromCall, 99)))
	// Where the two differ: how long A's join call itself took.
	inCall := make([]time.Duration, v.joins)
	for i := range v.joins {
		inCall[i] = returned[i].Sub(called[i])
	}
	slices.Sort(inCall)
	t.add(name, "join call p50", "us from call to return", us(percentile(inCall, 50)))
	t.add(name, "join call p99", "us from call to return", us(percentile(inCall, 99)))
	t.add(name, "all visible on all nodes", "ms after 1st join call", ms(last.Sub(called[0])))
	t.add(name, "all visible on all nodes", "ms after last join returned", ms(last.Sub(returned[v.joins-1])))
	t.add(name, "all read by the observers' watchers", "ms after 1st join call", ms(lastRead.Sub(called[0])))
	// A trial that waited for a graft says so: the median row hides it.
	t.add(name, "grafts sent by the nodes during the trial", "grafts", float64(graftsAfter-graftsBefore))
	fmt.Fprintf(os.Stderr, "%s trial %d: all visible %.1f ms after the 1st join call, %d grafts\n",
		name, trial, ms(last.Sub(called[0])), graftsAfter-graftsBefore)
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
