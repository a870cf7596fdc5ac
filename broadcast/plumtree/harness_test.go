package plumtree

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// recordingHandler is a test application: it knows every payload it has
// seen (as a CRDT would) and counts deliveries per id. It tells apart what
// came over the tree from what it learned by other means (learn), which it
// answers Known the first time the tree brings it.
type recordingHandler struct {
	name      string
	have      map[string][]byte
	learned   map[string]bool // held, but never seen over the tree
	delivered map[string]int
	rounds    map[string]uint32 // hops from the root at delivery
	log       *strings.Builder  // deliveries are written here when set
	// actions, when set, are returned by Merge for a New payload.
	actions func(from string, id []byte) []Action
}

func newRecordingHandler(name string) *recordingHandler {
	return &recordingHandler{name: name, have: map[string][]byte{}, learned: map[string]bool{}, delivered: map[string]int{}}
}

func (h *recordingHandler) Merge(from string, id, payload []byte) (Verdict, []Action) {
	if _, ok := h.have[string(id)]; ok {
		if h.learned[string(id)] {
			delete(h.learned, string(id))
			return Known, nil
		}
		return Duplicate, nil
	}
	h.have[string(id)] = append([]byte(nil), payload...)
	h.delivered[string(id)]++
	if h.log != nil {
		fmt.Fprintf(h.log, "  %s delivers %s\n", h.name, id)
	}
	if h.actions != nil {
		return New, h.actions(from, id)
	}
	return New, nil
}

// learn takes a payload by other means than the tree (an exchange): it is
// delivered, and the tree's copy will be Known.
func (h *recordingHandler) learn(id, payload []byte) bool {
	if _, ok := h.have[string(id)]; ok {
		return false
	}
	h.have[string(id)] = append([]byte(nil), payload...)
	h.learned[string(id)] = true
	h.delivered[string(id)]++
	if h.log != nil {
		fmt.Fprintf(h.log, "  %s learns %s\n", h.name, id)
	}
	return true
}

// Delivered records the hop count of each delivery (DeliveryObserver).
func (h *recordingHandler) Delivered(id []byte, root string, round uint32, from string) {
	if h.rounds == nil {
		h.rounds = map[string]uint32{}
	}
	h.rounds[string(id)] = round
}

func (h *recordingHandler) IsStale(id []byte) bool { _, ok := h.have[string(id)]; return ok }

func (h *recordingHandler) Graft(id []byte) ([]byte, bool) {
	p, ok := h.have[string(id)]
	return p, ok
}

func (h *recordingHandler) ExchangeStart(string) []byte { return nil }
func (h *recordingHandler) ExchangeReceive(Exchange, []byte) ([]byte, []Action) {
	return nil, nil
}

// inflight is a message on its way, due at a step of the simulated clock.
type inflight struct {
	from string
	env  Envelope
	due  int
}

// cluster runs Plumtree cores over a simulated network: a FIFO of messages
// (datadriven) or messages with random delays (property tests).
type cluster struct {
	t        testing.TB
	cfg      Config
	topic    string
	nodes    map[string]*Protocol
	handlers map[string]*recordingHandler
	links    map[string]map[string]bool
	queue    []inflight
	log      strings.Builder
	trees    map[string][]TreeResult // tree query results, by node
	// latency, when set, gives each message its own delay in steps.
	latency func() int
}

func newCluster(t testing.TB, cfg Config) *cluster {
	return &cluster{
		t: t, cfg: cfg, topic: "t",
		nodes:    map[string]*Protocol{},
		handlers: map[string]*recordingHandler{},
		links:    map[string]map[string]bool{},
	}
}

func (c *cluster) add(name string) {
	cfg := c.cfg
	cfg.Self = name
	cfg.Rand = nil
	p, err := NewProtocol(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	h := newRecordingHandler(name)
	h.log = &c.log
	if err := p.Register(c.topic, h); err != nil {
		c.t.Fatal(err)
	}
	c.nodes[name], c.handlers[name] = p, h
	c.links[name] = map[string]bool{}
}

func (c *cluster) names() []string {
	var ns []string
	for n := range c.nodes {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

func (c *cluster) link(a, b string) {
	c.links[a][b], c.links[b][a] = true, true
	c.nodes[a].NeighborUp(b)
	c.nodes[b].NeighborUp(a)
	c.collect(a, 0)
	c.collect(b, 0)
}

func (c *cluster) unlink(a, b string) {
	delete(c.links[a], b)
	delete(c.links[b], a)
	if p := c.nodes[a]; p != nil {
		p.NeighborDown(b)
	}
	if p := c.nodes[b]; p != nil {
		p.NeighborDown(a)
	}
}

// crash removes a node at once; its neighbours learn of it through
// NeighborDown (immediately here; the property test delays it).
func (c *cluster) crash(name string) {
	for peer := range c.links[name] {
		c.unlink(name, peer)
	}
	delete(c.nodes, name)
}

// collect moves a node's output into the network, due at step due.
func (c *cluster) collect(name string, due int) []Envelope {
	p := c.nodes[name]
	if p == nil {
		return nil
	}
	rd := p.Ready()
	if len(rd.Trees) > 0 {
		if c.trees == nil {
			c.trees = map[string][]TreeResult{}
		}
		c.trees[name] = append(c.trees[name], rd.Trees...)
	}
	for _, env := range rd.Messages {
		// A node never grafts for what it holds: that graft could only
		// earn a duplicate and a prune.
		if m := env.Msg; m.Type == MsgGraft && len(m.ID) > 0 && c.handlers[name].IsStale(m.ID) {
			c.t.Fatalf("%s grafts %s for %s, which it holds", name, env.To, m.ID)
		}
		d := due
		if c.latency != nil {
			d += c.latency()
		}
		c.queue = append(c.queue, inflight{from: name, env: env, due: d})
	}
	return rd.Messages
}

// step hands one message to its receiver; a message to a crashed node or
// over a link that is gone is lost, as on a real network.
func (c *cluster) step(m inflight, due int) bool {
	p := c.nodes[m.env.To]
	if p == nil || !c.links[m.from][m.env.To] {
		return false
	}
	// Round-trip the codec so every simulated message is also a wire test.
	dec, err := DecodeMessage(AppendMessage(nil, m.env.Msg))
	if err != nil {
		c.t.Fatalf("codec: %v", err)
	}
	if err := p.Step(m.from, dec); err != nil {
		c.t.Fatalf("%s step %v: %v", m.env.To, m.env.Msg, err)
	}
	c.collect(m.env.To, due)
	return true
}

func (c *cluster) sets(root string) string {
	var b strings.Builder
	for _, n := range c.names() {
		eager, lazy := c.nodes[n].Peers(root)
		fmt.Fprintf(&b, "%s: eager=%v lazy=%v\n", n, eager, lazy)
	}
	return b.String()
}
