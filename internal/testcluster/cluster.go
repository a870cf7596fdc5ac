package testcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/cpggo/cpg/broadcast"
	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/membership"
	"github.com/cpggo/cpg/registry"
	"github.com/hashicorp/memberlist"
)

// Config sets up a Cluster.
type Config struct {
	// Seed drives every random choice of the harness: the contacts a node
	// joins through, the nodes' own seeds, and the fate of each message on
	// a faulty link.
	Seed int64
	// Contacts is how many running nodes a starting node is given to join
	// through (default 3).
	Contacts int
	// Logger receives the nodes' logs (default: discarded).
	Logger *slog.Logger
	// Tune, if set, adjusts each node's configuration before it starts.
	Tune func(name string, cfg *registry.Config)
	// TimeScale stretches the failure detector's probes and the overlay's
	// keepalive (default 1). A build with the race detector runs several
	// times slower: at loopback timings its nodes would rule each other
	// dead for being slow, which is a fault of its own.
	TimeScale int
}

// Timings of the nodes a Cluster starts: every timer of the stack is
// shortened so that deaths, heals and exchanges take seconds, not minutes.
const (
	TickInterval      = 50 * time.Millisecond  // overlay and broadcast ticks
	KeepAlive         = 200 * time.Millisecond // overlay heartbeats
	MixInterval       = 2 * time.Second        // the cluster's random links across a healed partition
	ExchangeTicks     = 10                     // anti-entropy with a random neighbour every ~0.5 s
	ReapAfter         = 3 * time.Second        // entries of an owner memberlist does not list alive
	joinTimeout       = 10 * time.Second
	defaultContactsOf = 3
)

// Cluster is a set of registry nodes in this process, each known by a
// name that survives its restarts.
type Cluster struct {
	cfg Config
	nw  *network

	mu    sync.Mutex
	rng   *rand.Rand
	slots map[string]*slot
	order []string // names in the order they first started
}

// slot is one name's node across its lives.
type slot struct {
	node        *registry.Node // nil while stopped or dead
	incarnation uint64
	starts      int
	killed      bool
	// The addresses of the last life, taken again on restart so that the
	// other nodes' memberlist sees the same member come back.
	bind, gossip string
}

// New returns an empty cluster.
func New(cfg Config) *Cluster {
	if cfg.Contacts <= 0 {
		cfg.Contacts = defaultContactsOf
	}
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	return &Cluster{
		cfg:   cfg,
		nw:    newNetwork(cfg.Seed),
		rng:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0xc1)),
		slots: make(map[string]*slot),
	}
}

// Start starts the node called name (again, with a higher incarnation,
// if it ran before), joining it through running nodes it can reach.
func (c *Cluster) Start(name string) (*registry.Node, error) {
	c.mu.Lock()
	s := c.slots[name]
	if s == nil {
		s = &slot{bind: "127.0.0.1:0", gossip: "127.0.0.1:0"}
		c.slots[name] = s
		c.order = append(c.order, name)
	}
	if s.node != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("testcluster: start %s: already running", name)
	}
	s.starts++
	s.incarnation++
	s.killed = false
	contacts := c.contactsLocked(name)
	seed := c.rng.Int64()
	inc, bind, gossipAddr := s.incarnation, s.bind, s.gossip
	c.mu.Unlock()
	c.nw.revive(name)

	node, err := c.open(name, inc, seed, bind, gossipAddr, contacts)
	if err != nil && (bind != "127.0.0.1:0" || gossipAddr != "127.0.0.1:0") {
		// The last life's ports were taken meanwhile: start elsewhere.
		node, err = c.open(name, inc, seed, "127.0.0.1:0", "127.0.0.1:0", contacts)
	}
	if err != nil {
		return nil, fmt.Errorf("testcluster: start %s: %w", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.node = node
	s.bind = c.nw.overlayAddr(name)
	s.gossip = node.GossipAddr()
	c.nw.registerGossip(name, s.gossip)
	return node, nil
}

func (c *Cluster) open(name string, inc uint64, seed int64, bind, gossipAddr string, contacts []string) (*registry.Node, error) {
	scale := time.Duration(c.cfg.TimeScale)
	gossip := membership.LoopbackGossipConfig()
	gossip.ProbeInterval *= scale
	gossip.ProbeTimeout *= scale
	gossip.TCPTimeout *= scale
	cfg := registry.Config{
		Name:        name,
		Incarnation: inc,
		Logger:      c.cfg.Logger,
		Cluster: &registry.ClusterConfig{
			Bind:        bind,
			Gossip:      gossipAddr,
			Join:        contacts,
			JoinTimeout: joinTimeout,
			ReapAfter:   ReapAfter,
			Membership: membership.NodeConfig{
				Gossip:       gossip,
				TickInterval: TickInterval,
				KeepAlive:    KeepAlive * scale,
				MixInterval:  MixInterval,
				Seed:         seed,
				Logger:       c.cfg.Logger,
				Listen:       func(addr string) (net.Listener, error) { return c.nw.listen(name, addr) },
				Dial: func(ctx context.Context, addr string) (net.Conn, error) {
					return c.nw.dial(ctx, name, addr)
				},
				WrapGossipTransport: func(t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
					return &gossipTransport{NodeAwareTransport: t, nw: c.nw, self: name}
				},
			},
			Broadcast: broadcast.Options{
				TickInterval: TickInterval,
				Config:       plumtree.Config{ExchangeTicks: ExchangeTicks},
			},
			WrapTransport: func(t broadcast.Transport) broadcast.Transport {
				return &faultyTransport{Transport: t, nw: c.nw, self: name}
			},
		},
	}
	if c.cfg.Tune != nil {
		c.cfg.Tune(name, &cfg)
	}
	return registry.New(cfg)
}

// contactsLocked picks up to cfg.Contacts running nodes that name can
// reach; c.mu is held.
func (c *Cluster) contactsLocked(name string) []string {
	var reachable []string
	c.nw.mu.Lock()
	for _, other := range c.order {
		s := c.slots[other]
		if other != name && s.node != nil && c.nw.reachableLocked(name, other) {
			reachable = append(reachable, s.gossip)
		}
	}
	c.nw.mu.Unlock()
	c.rng.Shuffle(len(reachable), func(i, j int) { reachable[i], reachable[j] = reachable[j], reachable[i] })
	return reachable[:min(len(reachable), c.cfg.Contacts)]
}

// Stop closes the node called name gracefully: it tells the others it is
// leaving.
func (c *Cluster) Stop(name string) error {
	c.mu.Lock()
	s := c.slots[name]
	if s == nil || s.node == nil {
		c.mu.Unlock()
		return fmt.Errorf("testcluster: stop %s: not running", name)
	}
	node := s.node
	s.node = nil
	c.mu.Unlock()
	return node.Close()
}

// Restart stops the node called name gracefully and starts it again with
// a higher incarnation.
func (c *Cluster) Restart(name string) (*registry.Node, error) {
	if err := c.Stop(name); err != nil {
		return nil, err
	}
	return c.Start(name)
}

// Kill stops the node called name as a crash would: at once, with no
// leave and no tombstone of its own; its sockets close. It returns once
// the node's resources are released, so that Start may take its ports
// again.
func (c *Cluster) Kill(name string) error {
	c.mu.Lock()
	s := c.slots[name]
	if s == nil || s.node == nil {
		c.mu.Unlock()
		return fmt.Errorf("testcluster: kill %s: not running", name)
	}
	node := s.node
	s.node = nil
	s.killed = true
	c.mu.Unlock()
	c.nw.kill(name)
	// Everything the node says from now on is lost: Close only releases
	// its goroutines and ports.
	return node.Close()
}

// Node returns the running node called name, or nil.
func (c *Cluster) Node(name string) *registry.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.slots[name]; s != nil {
		return s.node
	}
	return nil
}

// Incarnation returns the incarnation the node called name was last
// started with.
func (c *Cluster) Incarnation(name string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.slots[name]; s != nil {
		return s.incarnation
	}
	return 0
}

// Running returns the names of the running nodes, in the order they first
// started.
func (c *Cluster) Running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, name := range c.order {
		if c.slots[name].node != nil {
			out = append(out, name)
		}
	}
	return out
}

// Partition cuts the cluster into sides: each listed set of nodes is one,
// and the nodes not listed are one more. Nodes on different sides reach
// each other neither over the overlay nor through memberlist. A new
// partition replaces the last.
func (c *Cluster) Partition(sides ...[]string) { c.nw.partition(sides) }

// Heal ends the partition.
func (c *Cluster) Heal() { c.nw.heal() }

// SetLinkFaults sets the faults of the directed link from one node to
// another (zero LinkFaults: none).
func (c *Cluster) SetLinkFaults(from, to string, f LinkFaults) { c.nw.setLinkFaults(from, to, f) }

// ClearLinkFaults removes the faults of every link.
func (c *Cluster) ClearLinkFaults() { c.nw.clearLinkFaults() }

// Close stops every running node gracefully.
func (c *Cluster) Close() error {
	var errs []error
	names := c.Running()
	slices.Reverse(names)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, name := range names {
		wg.Go(func() {
			if err := c.Stop(name); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
