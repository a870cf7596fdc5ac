package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cpggo/cpg/internal/proctest"
	"github.com/cpggo/cpg/membership/hyparview"
)

// observerKinds are the two ways w2's other nodes see the joins:
// "embedded", a registry node in a Go program whose watcher notes when
// the node applied each join and hands the times over afterwards (as
// pg's benchmark has a process on each observer stamp its notifications
// in its own VM), and "agents", cpgd agents whose HTTP watch streams
// carry the same stamps to this process as the joins arrive. The agents'
// streams cost the nodes and this process CPU on the shared cores while
// the joins propagate (JSON for every event, and the reading); an
// embedded watcher costs a channel receive.
var observerKinds = []string{"embedded", "agents"}

// observed is what one observer saw of a trial's joins.
type observed struct {
	applied  map[string]time.Time // when it applied each join, by member
	lastRead time.Time            // when the watcher took the last one
	overflow bool
}

// readyGroup holds one member of each node, joined before each trial: it
// makes the scope exist on every node (reads never create one), and a
// trial starts once every node sees all of them, as pg's benchmark
// starts once every node sees one '$ready' member per node.
const readyGroup = "/ready"

// node is one of w2's nodes.
type node interface {
	// ready joins the node's ready member of scope and returns once the
	// node sees nodes ready members and holds its overlay links.
	ready(ctx context.Context, scope string, nodes int) error
}

// observer is one of w2's nodes other than A, watching the joins.
type observer interface {
	node
	// watch watches the scope's groups matching pattern; it returns once
	// every later change will be seen.
	watch(ctx context.Context, scope, pattern string, joins int) error
	// wait returns once the observer has seen the joins; collect then
	// says when it applied each. They are apart so that no observer's
	// answer is made while another is still applying the joins.
	wait(timeout <-chan time.Time) error
	collect() (observed, error)
}

// agentObserver watches through a cpgd agent's HTTP API.
type agentObserver struct {
	node      *proctest.Node
	recording <-chan *proctest.Recording
	got       *proctest.Recording
}

func (o *agentObserver) ready(ctx context.Context, scope string, nodes int) error {
	return agentReady(ctx, o.node, scope, nodes)
}

func agentReady(ctx context.Context, n *proctest.Node, scope string, nodes int) error {
	if err := n.Join(ctx, scope, readyGroup, "ready-"+n.Name); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		members, err := n.Members(ctx, scope, readyGroup)
		if err == nil && len(members) >= nodes {
			return agentLinked(ctx, n, nodes)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d of %d ready members after 10 s (%v)", n.Name, len(members), nodes, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// overlayLinks is how many overlay links each node of a cluster of the
// given size holds once the overlay has formed: every other node up to
// one short of HyParView's default active view, the number below which a
// node asks for more with high priority (a node may hold one more).
func overlayLinks(nodes int) int {
	return min(nodes-1, hyparview.DefaultConfig().ActiveSize-1)
}

// agentLinked is waitLinked through an agent's API.
func agentLinked(ctx context.Context, n *proctest.Node, nodes int) error {
	want := overlayLinks(nodes)
	deadline := time.Now().Add(20 * time.Second)
	for {
		active, err := n.ActivePeers(ctx)
		if err == nil && len(active) >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d of %d overlay links after 20 s (%v)", n.Name, len(active), want, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (o *agentObserver) watch(ctx context.Context, scope, pattern string, joins int) error {
	var err error
	o.recording, err = o.node.Record(ctx, scope, pattern, joins)
	return err
}

func (o *agentObserver) wait(timeout <-chan time.Time) error {
	select {
	case o.got = <-o.recording:
		return nil
	case <-timeout:
		return errors.New("the joins did not all arrive within 60 s")
	}
}

func (o *agentObserver) collect() (observed, error) {
	if o.got == nil {
		return observed{}, errors.New("collect before wait")
	}
	p := o.got.Parse()
	if p.Err != nil {
		return observed{}, fmt.Errorf("%s's watch: %w", o.node.Name, p.Err)
	}
	seen := observed{applied: make(map[string]time.Time), overflow: p.Overflow}
	for _, ev := range p.Events {
		if ev.Kind != "join" {
			continue
		}
		seen.applied[ev.Member.ID] = ev.Applied
		if ev.At.After(seen.lastRead) {
			seen.lastRead = ev.At
		}
	}
	return seen, nil
}

// embeddedObserver watches inside an embedded node.
type embeddedObserver struct{ node *embeddedNode }

func (o *embeddedObserver) ready(_ context.Context, scope string, nodes int) error {
	return o.node.ready(scope, nodes)
}

func (o *embeddedObserver) watch(_ context.Context, scope, pattern string, joins int) error {
	_, err := o.node.ask(embeddedJob{Op: "watch", Scope: scope, Pattern: pattern, Joins: joins})
	return err
}

func (o *embeddedObserver) wait(<-chan time.Time) error {
	// The node gives up by itself after 60 s.
	_, err := o.node.ask(embeddedJob{Op: "wait"})
	return err
}

func (o *embeddedObserver) collect() (observed, error) {
	r, err := o.node.ask(embeddedJob{Op: "collect"})
	if err != nil {
		return observed{}, err
	}
	seen := observed{applied: make(map[string]time.Time, len(r.Applied)), lastRead: time.Unix(0, r.LastRead), overflow: r.Overflow}
	for id, at := range r.Applied {
		seen.applied[id] = time.Unix(0, at)
	}
	return seen, nil
}
