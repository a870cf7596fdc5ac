// Flooder: a cluster of broadcast nodes in one process, on loopback TCP,
// one of which floods the others with messages. Every node counts what it
// delivers; the run prints the broadcast's reliability (the share of
// deliveries that happened), its redundancy (RMR: payload copies received
// beyond one per node, Plumtree's measure) and how long delivery took.
// It is gen_hypar's flooder on Plumtree over the HyParView overlay. Run it
// with
//
//	go run ./examples/flooder
//	go run ./examples/flooder -nodes 16 -messages 5000 -size 1024
//	go run ./examples/flooder -interval 0
//
// A few messages sent one at a time come first, while the sender's tree
// forms (the first broadcast goes over every link; duplicates prune the
// links it does not need), then the flood. Broadcast never blocks: a flood
// sent as fast as the sender can outruns the overlay's per-link send
// queues, whose refusals the run counts. Plumtree repairs a lost payload
// when a neighbour announces it; with no announcement left to go by, only
// anti-entropy would, which the registry's replication has and the
// plumtree.SeenSet used here does not: a flood with -interval 0 shows it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cpggo/cpg/broadcast"
	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/membership"
)

func main() {
	var cfg config
	flag.IntVar(&cfg.nodes, "nodes", 8, "how many nodes")
	flag.IntVar(&cfg.messages, "messages", 1000, "how many messages the first node floods")
	flag.IntVar(&cfg.warmup, "warmup", 10, "messages sent one at a time before the flood, while the broadcast tree forms")
	flag.IntVar(&cfg.size, "size", 64, "payload bytes per message")
	flag.DurationVar(&cfg.interval, "interval", 100*time.Microsecond, "pause between two broadcasts (0: as fast as the sender can)")
	flag.DurationVar(&cfg.settle, "settle", 5*time.Second, "how long to wait for the last deliveries")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, _, err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// config is the flood to run.
type config struct {
	nodes, warmup, messages, size int
	interval, settle              time.Duration
}

// topic is what the flood travels on; every node registers it.
const topic = "flood"

// result is what one phase of a run (the warm-up, the flood) measured.
type result struct {
	// messages is how many the phase broadcast; expected deliveries are
	// every message on every node but the sender.
	messages, expected, delivered int
	// lowest is the fewest messages one receiver delivered.
	lowest int
	// appDuplicates counts messages handed to the application twice.
	appDuplicates int
	// payloads counts payload messages received, duplicates included.
	payloads uint64
	// grafts counts the payloads nodes asked a neighbour for after it
	// announced them: a payload lost or late on the tree.
	grafts uint64
	// sendErrors counts payloads and announcements the overlay refused
	// to queue (a link's queue full, or the link going down); grafts
	// repair what they lose.
	sendErrors uint64
	// latencies are the delays from broadcast to delivery, sorted.
	latencies []time.Duration
	// sending is how long the sender took to hand every message over;
	// elapsed runs from the phase's first broadcast to its last delivery.
	sending, elapsed time.Duration
}

func (r result) reliability() float64 { return float64(r.delivered) / float64(r.expected) }

// rmr is the relative message redundancy: payload messages received per
// delivery, minus one (0: every node received each message once), as the
// Plumtree paper counts it over the nodes that delivered.
func (r result) rmr() float64 {
	if r.delivered == 0 {
		return 0
	}
	return float64(r.payloads)/float64(r.delivered) - 1
}

func (r result) latency(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[int(q*float64(len(r.latencies)-1))]
}

// receiver counts one node's deliveries. Its deliver runs on the node's
// broadcast goroutine; the flooder reads it from another.
type receiver struct {
	mu sync.Mutex
	// at is when each message, by id, was delivered; zero until it is.
	at        []time.Time
	delivered int
	dups      int
}

func (r *receiver) deliver(id, _ []byte) {
	now := time.Now()
	k := binary.BigEndian.Uint32(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at[k].IsZero() {
		r.dups++
		return
	}
	r.at[k] = now
	r.delivered++
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.delivered
}

func run(ctx context.Context, cfg config, out io.Writer) (warmup, flood result, err error) {
	if cfg.nodes < 2 || cfg.messages < 1 || cfg.warmup < 0 || cfg.size < 0 {
		return warmup, flood, errors.New("flooder: want at least 2 nodes and 1 message")
	}
	key := make([]byte, 32)
	rand.Read(key)

	overlay := make([]*membership.Node, 0, cfg.nodes)
	defer func() {
		// Leaving is a round of gossip each: leave together.
		var wg sync.WaitGroup
		for _, m := range overlay {
			wg.Go(func() { m.Close() })
		}
		wg.Wait()
	}()
	began := time.Now()
	for i := range cfg.nodes {
		m, err := membership.Start(membership.NodeConfig{
			Name: fmt.Sprintf("node-%d", i), ClusterKey: key,
			Gossip: membership.LoopbackGossipConfig(),
		})
		if err != nil {
			return warmup, flood, err
		}
		overlay = append(overlay, m)
		if i > 0 {
			if err := m.Join(ctx, overlay[0].GossipAddr()); err != nil {
				return warmup, flood, fmt.Errorf("node-%d joins: %w", i, err)
			}
		}
	}
	for !connected(overlay) {
		select {
		case <-ctx.Done():
			return warmup, flood, fmt.Errorf("the overlay never connected every node: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "flooder: %d nodes on loopback, overlay connected in %v\n", cfg.nodes, time.Since(began).Round(time.Millisecond))

	nodes := make([]*broadcast.Node, 0, cfg.nodes)
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	total := cfg.warmup + cfg.messages
	receivers := make([]*receiver, cfg.nodes)
	for i, m := range overlay {
		n, err := broadcast.Start(m, broadcast.Options{})
		if err != nil {
			return warmup, flood, err
		}
		nodes = append(nodes, n)
		receivers[i] = &receiver{at: make([]time.Time, total)}
		// A SeenSet tells new messages from duplicates by id: it must
		// remember every id of the run (its default, for a minute, is
		// long enough for the time).
		seen, err := plumtree.NewSeenSet(plumtree.SeenSetConfig{
			Deliver: receivers[i].deliver, MaxEntries: max(total, 1<<16),
		})
		if err != nil {
			return warmup, flood, err
		}
		if err := n.Register(topic, seen); err != nil {
			return warmup, flood, err
		}
	}

	p := phase{cfg: cfg, nodes: nodes, receivers: receivers}
	if cfg.warmup > 0 {
		fmt.Fprintf(out, "warm-up: node-0 broadcasts %d messages one at a time while its tree forms\n", cfg.warmup)
		if warmup, err = p.run(ctx, 0, cfg.warmup, 20*time.Millisecond); err != nil {
			return warmup, flood, err
		}
		warmup.print(out)
	}
	fmt.Fprintf(out, "flood: node-0 broadcasts %d messages of %d bytes", cfg.messages, cfg.size)
	if cfg.interval > 0 {
		fmt.Fprintf(out, ", one every %v", cfg.interval)
	}
	fmt.Fprintln(out)
	if flood, err = p.run(ctx, cfg.warmup, total, cfg.interval); err != nil {
		return warmup, flood, err
	}
	for i, r := range receivers[1:] {
		fmt.Fprintf(out, "  node-%-3d delivered %d of %d\n", i+1, r.count(), total)
	}
	flood.print(out)
	return warmup, flood, nil
}

// phase runs broadcasts from node-0 and measures them.
type phase struct {
	cfg       config
	nodes     []*broadcast.Node
	receivers []*receiver
}

// run broadcasts messages from, ..., to-1, one every interval, waits for
// their deliveries (or for none to come for cfg.settle) and measures them.
func (p phase) run(ctx context.Context, from, to int, interval time.Duration) (result, error) {
	before := sumStats(p.nodes)
	res := result{messages: to - from, expected: (len(p.nodes) - 1) * (to - from)}
	delivered := func() int {
		n := 0
		for _, r := range p.receivers[1:] {
			n += r.count()
		}
		return n
	}
	goal := delivered() + res.expected

	sent := make([]time.Time, to-from)
	payload := make([]byte, p.cfg.size)
	for k := from; k < to; k++ {
		id := binary.BigEndian.AppendUint32(nil, uint32(k))
		sent[k-from] = time.Now()
		if err := p.nodes[0].Broadcast(topic, id, payload); err != nil {
			return res, err
		}
		if interval > 0 {
			time.Sleep(interval)
		}
	}
	res.sending = time.Since(sent[0])
	last, quietSince := -1, time.Now()
	for {
		n := delivered()
		if n != last {
			last, quietSince = n, time.Now()
		}
		if n == goal || time.Since(quietSince) > p.cfg.settle {
			break
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		time.Sleep(2 * time.Millisecond)
	}
	after := sumStats(p.nodes)
	res.payloads = after.Received[plumtree.MsgGossip] - before.Received[plumtree.MsgGossip]
	res.grafts = after.GraftsSent - before.GraftsSent
	res.sendErrors = after.SendErrors - before.SendErrors

	res.lowest = res.messages
	for _, r := range p.receivers[1:] {
		r.mu.Lock()
		got := 0
		for k := from; k < to; k++ {
			if at := r.at[k]; !at.IsZero() {
				got++
				res.latencies = append(res.latencies, at.Sub(sent[k-from]))
				res.elapsed = max(res.elapsed, at.Sub(sent[0]))
			}
		}
		res.delivered += got
		res.lowest = min(res.lowest, got)
		res.appDuplicates += r.dups
		r.mu.Unlock()
	}
	slices.Sort(res.latencies)
	return res, nil
}

func (r result) print(out io.Writer) {
	fmt.Fprintf(out, "  reliability %.2f%%: %d of %d deliveries, the fewest on one node %d of %d\n",
		100*r.reliability(), r.delivered, r.expected, r.lowest, r.messages)
	fmt.Fprintf(out, "  RMR %.4f: %d payload messages received for %d deliveries; %d delivered twice\n",
		r.rmr(), r.payloads, r.delivered, r.appDuplicates)
	fmt.Fprintf(out, "  grafts %d: payloads a node asked for after an announcement, lost or late on the tree\n", r.grafts)
	if r.sendErrors > 0 {
		fmt.Fprintf(out, "  %d sends refused by the overlay (a link's queue full, or the link going down), each announced again and grafted\n", r.sendErrors)
	}
	fmt.Fprintf(out, "  latency from broadcast to delivery: p50 %v, p99 %v, max %v\n",
		r.latency(0.5).Round(time.Microsecond), r.latency(0.99).Round(time.Microsecond), r.latency(1).Round(time.Microsecond))
	fmt.Fprintf(out, "  sent in %v (%.0f messages/s), every delivery done %v after the first broadcast\n",
		r.sending.Round(time.Millisecond), float64(r.messages)/r.sending.Seconds(), r.elapsed.Round(time.Millisecond))
}

// sumStats adds up the nodes' broadcast counters.
func sumStats(nodes []*broadcast.Node) broadcast.NodeStats {
	var sum broadcast.NodeStats
	for _, n := range nodes {
		st, err := n.Stats()
		if err != nil {
			continue
		}
		for t := range sum.Received {
			sum.Received[t] += st.Received[t]
		}
		sum.GraftsSent += st.GraftsSent
		sum.SendErrors += st.SendErrors
	}
	return sum
}

// connected reports whether the overlay's active links join every node.
func connected(nodes []*membership.Node) bool {
	links := map[string][]string{}
	for _, m := range nodes {
		for _, p := range m.Active() {
			links[m.Self().Name] = append(links[m.Self().Name], p.Name)
		}
	}
	reached := map[string]bool{nodes[0].Self().Name: true}
	frontier := []string{nodes[0].Self().Name}
	for len(frontier) > 0 {
		next := frontier[0]
		frontier = frontier[1:]
		for _, p := range links[next] {
			if !reached[p] {
				reached[p] = true
				frontier = append(frontier, p)
			}
		}
	}
	return len(reached) == len(nodes)
}
