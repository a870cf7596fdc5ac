package replication

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
)

// cluster runs replicas over real Plumtree cores with in-memory links that
// a test can cut: it is what the simulator does, at a size a test can
// reason about step by step.
type cluster struct {
	t     testing.TB
	names []string
	nodes map[string]*member
	// inflight holds the messages sent and not yet delivered, in order.
	inflight []envelope
	// drop, when set, loses the messages it selects.
	drop func(from, to string, m *plumtree.Message) bool
	// exchangeBytes counts the encoded size of the exchange messages that
	// crossed the network: what they cost on the wire, framing aside.
	exchangeBytes int
}

type member struct {
	name string
	pt   *plumtree.Protocol
	rep  *Replica
	st   *crdt.State
}

type envelope struct {
	from, to string
	msg      plumtree.Message
}

func newCluster(t testing.TB, cfg plumtree.Config, names ...string) *cluster {
	c := &cluster{t: t, names: names, nodes: map[string]*member{}}
	for i, name := range names {
		cfg := cfg
		cfg.Self = name
		cfg.Rand = rand.New(rand.NewPCG(uint64(i), 7))
		pt, err := plumtree.NewProtocol(cfg)
		if err != nil {
			t.Fatal(err)
		}
		st := crdt.New(crdt.Config{Self: name, Incarnation: 1})
		rep := New(st, Config{})
		if err := pt.Register(Topic, rep); err != nil {
			t.Fatal(err)
		}
		c.nodes[name] = &member{name: name, pt: pt, rep: rep, st: st}
	}
	return c
}

// link brings a link up at both ends.
func (c *cluster) link(a, b string) {
	c.nodes[a].pt.NeighborUp(b)
	c.nodes[b].pt.NeighborUp(a)
	c.collect(a)
	c.collect(b)
}

func (c *cluster) collect(name string) {
	for _, env := range c.nodes[name].pt.Ready().Messages {
		c.inflight = append(c.inflight, envelope{from: name, to: env.To, msg: env.Msg})
	}
}

// settle delivers messages until none is left, ticking every node when the
// network is quiet, for at most ticks ticks.
func (c *cluster) settle(ticks int) {
	for range ticks {
		c.deliverAll()
		c.tick()
	}
	c.deliverAll()
}

func (c *cluster) deliverAll() {
	for steps := 0; len(c.inflight) > 0; steps++ {
		if steps > 1_000_000 {
			c.t.Fatal("messages never stop")
		}
		env := c.inflight[0]
		c.inflight = c.inflight[1:]
		if c.drop != nil && c.drop(env.from, env.to, &env.msg) {
			continue
		}
		if env.msg.Type == plumtree.MsgExchange || env.msg.Type == plumtree.MsgExchangeEnd {
			c.exchangeBytes += len(plumtree.AppendMessage(nil, env.msg))
		}
		if err := c.nodes[env.to].pt.Step(env.from, env.msg); err != nil {
			c.t.Fatalf("%s: step from %s: %v", env.to, env.from, err)
		}
		c.collect(env.to)
	}
}

func (c *cluster) tick() {
	for _, name := range c.names {
		c.nodes[name].pt.Tick()
		c.collect(name)
	}
}

// join makes owner join member to group and broadcasts the op.
func (c *cluster) join(owner, group, memberID string) {
	n := c.nodes[owner]
	op := n.st.LocalJoin("s", group, memberID, 1, nil, 1)
	id, payload := Publish(&op)
	if err := n.pt.Broadcast(Topic, id, payload); err != nil {
		c.t.Fatal(err)
	}
	c.collect(owner)
}

// version returns what node holds of owner.
func (c *cluster) version(node, owner string) crdt.Version {
	v, _ := c.nodes[node].st.Owner(owner)
	return v
}

func (c *cluster) converged() bool {
	first := c.nodes[c.names[0]].st.Summary()
	for _, name := range c.names[1:] {
		if c.nodes[name].st.Summary() != first {
			return false
		}
	}
	return true
}

func (c *cluster) String() string {
	s := ""
	for _, name := range c.names {
		s += fmt.Sprintf("%s: %v\n", name, c.nodes[name].st.Digest())
	}
	return s
}

// longPeriods keeps periodic exchanges out of a test's way, so that what
// it sees comes from the broadcast and the exchanges it causes.
var longPeriods = plumtree.Config{ExchangeTicks: 1_000_000}

var _ = slices.Contains[[]string]

func v(inc, seq uint64) crdt.Version { return crdt.Version{Incarnation: inc, Seq: seq} }
