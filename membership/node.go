package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"net"
	"sync"
	"time"

	"github.com/cpggo/cpg/internal/wire"
	"github.com/cpggo/cpg/membership/hyparview"
	"github.com/hashicorp/memberlist"
)

// NodeConfig configures a Node. Only Name is required; ClusterKey is
// required for a cluster that should refuse strangers.
type NodeConfig struct {
	Name          string // unique node name in the cluster (required)
	BindAddr      string // overlay TCP listen address, default "127.0.0.1:0"
	AdvertiseAddr string // overlay address others dial, default the bound address
	GossipAddr    string // memberlist bind address, default "127.0.0.1:0"
	HTTPAddr      string // carried in memberlist metadata only
	// Incarnation is the incarnation of this process's registry state,
	// carried in memberlist metadata: a node that purges this one uses it
	// to name exactly the process that died.
	Incarnation  uint64
	ClusterLabel string // default "cpg"; nodes with another label cannot connect
	// ClusterKey is 16, 24 or 32 bytes. It authenticates every overlay
	// connection (HMAC proof in the handshake) and, hashed, encrypts
	// memberlist traffic. Empty means an open cluster: no encryption, and
	// any node with the label can connect.
	ClusterKey   []byte
	HyParView    hyparview.Config // zero value: hyparview.DefaultConfig()
	TickInterval time.Duration    // logical tick of the HyParView core, default 100ms
	KeepAlive    time.Duration    // heartbeat period on active links, default 500ms
	Gossip       GossipConfig     // memberlist timings; zero fields take DefaultGossipConfig
	// MaxFrame is the largest frame this node reads, default
	// wire.DefaultMaxFrame, from 64 KiB to 1 GiB. Each link's handshake
	// tells the peer, which never sends a larger one: Send refuses a
	// payload larger than the peer's MaxFrame (or this node's). The node
	// buffers up to max(8 MiB, twice MaxFrame) of payloads per link for
	// its Events consumer.
	MaxFrame int
	Logger   *slog.Logger // default: discard
	// Seed seeds the core's randomness; 0 picks one from the clock.
	Seed int64
	// MixInterval is the period in which the cluster as a whole makes
	// about mixesPerInterval random links (HyParView.Mix) to nodes drawn
	// from memberlist: each node makes one with probability
	// mixesPerInterval / members. That is what joins the two sides of a
	// healed partition. Default 30 s; negative disables it.
	MixInterval time.Duration

	// Listen and Dial, when set, open the overlay's sockets in place of
	// package net: Listen gets BindAddr; Dial gets a peer's overlay address
	// for every link, transient send, and the dial that confirms a peer is
	// gone (a refused connection must then fail with syscall.ECONNREFUSED
	// in its chain). Tests put a network they can partition or cut under
	// a node there.
	Listen func(address string) (net.Listener, error)
	Dial   func(ctx context.Context, address string) (net.Conn, error)
	// WrapGossipTransport, when set, wraps the transport memberlist runs
	// on (opened on GossipAddr), so that a test's partition also silences
	// the failure detector's probes and gossip.
	WrapGossipTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// Errors returned by the Node API.
var (
	ErrClosed    = errors.New("membership: node closed")
	ErrNotActive = errors.New("membership: peer not in the active view")
	ErrQueueFull = errors.New("membership: send queue full")
)

const (
	defaultLabel     = "cpg"
	defaultTick      = 100 * time.Millisecond
	defaultKeepAlive = 500 * time.Millisecond
	// rejoinTicks spaces the rejoin attempts of an isolated node.
	rejoinTicks = 10
	// mixesPerInterval is how many Mix links the whole cluster makes per
	// MixInterval, on average: enough to find a link across a healed
	// partition within a few intervals, too few to disturb the overlay.
	mixesPerInterval   = 2
	defaultMixInterval = 30 * time.Second
)

func (c NodeConfig) withDefaults() (NodeConfig, error) {
	if c.Name == "" {
		return c, errors.New("membership: NodeConfig.Name is required")
	}
	if len(c.Name) > maxHelloName {
		return c, fmt.Errorf("membership: node name of %d bytes exceeds %d", len(c.Name), maxHelloName)
	}
	switch len(c.ClusterKey) {
	case 0, 16, 24, 32:
	default:
		return c, fmt.Errorf("membership: ClusterKey of %d bytes, want 16, 24 or 32", len(c.ClusterKey))
	}
	if c.BindAddr == "" {
		c.BindAddr = "127.0.0.1:0"
	}
	if c.GossipAddr == "" {
		c.GossipAddr = "127.0.0.1:0"
	}
	if c.ClusterLabel == "" {
		c.ClusterLabel = defaultLabel
	}
	if len(c.ClusterLabel) > maxHelloLabel {
		return c, fmt.Errorf("membership: cluster label of %d bytes exceeds %d", len(c.ClusterLabel), maxHelloLabel)
	}
	if len(c.HTTPAddr) > maxHelloAddr || len(c.AdvertiseAddr) > maxHelloAddr {
		return c, fmt.Errorf("membership: address longer than %d bytes", maxHelloAddr)
	}
	if c.HyParView == (hyparview.Config{}) {
		c.HyParView = hyparview.DefaultConfig()
	}
	if err := c.HyParView.Validate(); err != nil {
		return c, err
	}
	if c.TickInterval <= 0 {
		c.TickInterval = defaultTick
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = wire.DefaultMaxFrame
	}
	if c.MaxFrame < minMaxFrame || c.MaxFrame > maxMaxFrame {
		return c, fmt.Errorf("membership: MaxFrame %d, want %d..%d", c.MaxFrame, minMaxFrame, maxMaxFrame)
	}
	c.Gossip = c.Gossip.withDefaults()
	if c.MixInterval == 0 {
		c.MixInterval = defaultMixInterval
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	return c, nil
}

// Node is one member of the overlay: it runs the HyParView core over
// authenticated TCP links, keeps those links alive, and uses memberlist to
// find contacts and learn about deaths. All methods are safe for concurrent
// use.
type Node struct {
	cfg    NodeConfig
	log    *slog.Logger
	self   Peer
	hs     handshake
	ln     net.Listener
	gossip *gossip
	table  *statusTable
	events *eventQueue
	inputs chan coreInput
	start  time.Time
	done   chan struct{}
	wg     sync.WaitGroup
	// closing is cancelled when the node closes: dials in flight give up.
	closing context.Context
	cancel  context.CancelFunc
	// transients holds one token per transient send in flight.
	transients chan struct{}

	mu      sync.Mutex
	closed  bool
	links   map[string]*link      // the primary link to each peer
	conns   map[*link]struct{}    // every open link, primary or not
	raw     map[net.Conn]struct{} // connections no link owns yet (see trackConn)
	active  []Peer                // the core's views after the last step
	passive []Peer
	joined  bool // Join was called: an isolated node rejoins

	// Owned by the loop: when the last keepalive sweep ran, and when the
	// node last resumed from a pause (see keepAlive).
	lastSweep time.Duration
	resumedAt time.Duration
	// Owned by the loop: the stalled-link policy, the peers whose links
	// it observed at its last check, and the links it replaced that wait
	// for their reset.
	revival        *hyparview.Revival
	revivalWatched map[string]struct{}
	pendingResets  []pendingReset

	closeOnce sync.Once
}

type inputKind int

const (
	inputMessage         inputKind = iota + 1 // a HyParView message from peer
	inputPayload                              // an application payload from peer (holds a credit of link)
	inputLinkFailed                           // a link to peer failed
	inputTransientFailed                      // a short-lived send to peer failed
	inputJoin                                 // send a JOIN to peer
	inputProbe                                // a probe of link's peer connected (conn) or failed (err)
	inputLinkReplaced                         // the peer replaced its established link by a new one
)

// coreInput is everything that reaches the node's loop from other
// goroutines; the loop alone touches the HyParView core.
type coreInput struct {
	kind    inputKind
	peer    Peer
	msg     hyparview.ProtocolMessage
	payload []byte
	link    *link
	err     error           // inputLinkFailed: why the link ended; inputProbe: why it failed
	conn    net.Conn        // inputProbe: the probe's authenticated connection
	res     handshakeResult // inputProbe: its handshake
}

// Start opens the overlay listener and memberlist and starts the node,
// alone: call Join to enter a cluster.
func Start(cfg NodeConfig) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node", cfg.Name)
	listen := cfg.Listen
	if listen == nil {
		listen = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	ln, err := listen(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("membership: overlay listen on %s: %w", cfg.BindAddr, err)
	}
	self := Peer{Name: cfg.Name, Addr: cfg.AdvertiseAddr}
	if self.Addr == "" {
		bound := ln.Addr().(*net.TCPAddr)
		if bound.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("membership: overlay bound to %s, a wildcard address other nodes cannot dial: set AdvertiseAddr", bound)
		}
		self.Addr = bound.String()
	}
	n := &Node{
		cfg:  cfg,
		log:  logger,
		self: self,
		hs: handshake{self: self, label: cfg.ClusterLabel, key: cfg.ClusterKey, timeout: dialTimeout,
			maxFrame: cfg.MaxFrame},
		ln:         ln,
		table:      newStatusTable(),
		events:     newEventQueue(),
		inputs:     make(chan coreInput, 256),
		start:      time.Now(),
		done:       make(chan struct{}),
		transients: make(chan struct{}, maxTransientSends),
		links:      make(map[string]*link),
		conns:      make(map[*link]struct{}),
		raw:        make(map[net.Conn]struct{}),
		revival:    hyparview.NewRevival(revivalConfig()),
	}
	n.closing, n.cancel = context.WithCancel(context.Background())
	n.gossip, err = startGossip(cfg, self, n.table, logger)
	if err != nil {
		n.cancel()
		ln.Close()
		return nil, err
	}
	core := hyparview.New(self, cfg.coreConfig(), rand.New(rand.NewSource(cfg.Seed)))
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.acceptLoop() }()
	go func() { defer n.wg.Done(); n.events.pump(n.done) }()
	go func() { defer n.wg.Done(); n.run(core) }()
	return n, nil
}

// Self is this node's identity and overlay address.
func (n *Node) Self() Peer { return n.self }

// GossipAddr is the memberlist address other nodes pass to Join.
func (n *Node) GossipAddr() string { return n.gossip.addr() }

// Events delivers link-up, link-down and message events, to one consumer.
// Each peer's events come in order, and a payload arrives only between its
// peer's LinkUp and LinkDown; across peers, link events come before
// payloads queued earlier. The channel closes when the node closes.
//
// A consumer that falls behind does not stall the node and costs no link:
// heartbeats and the overlay's own messages keep flowing, each link
// buffers a bounded number of payloads, and past that the peers' Send
// returns ErrQueueFull until the consumer catches up. Every payload a
// peer's Send accepted is delivered unless the link goes down first (the
// consumer then gets LinkDown).
func (n *Node) Events() <-chan Event { return n.events.channel() }

// Statuses delivers changes of the cluster's nodes' status (alive,
// suspect, dead, left), this node's own first "alive" included. The buffer is bounded and the oldest events are dropped when it is
// full; Members has the current state. It closes when the node closes.
func (n *Node) Statuses() <-chan StatusEvent { return n.table.out }

// Members returns every node this node has heard of (itself included, and
// nodes since dead or left), by name, with its last known status.
func (n *Node) Members() []NodeInfo {
	list := n.table.list()
	for i := range list {
		if rtt, ok := n.RTT(list[i].Name); ok {
			list[i].RTT = rtt
		}
	}
	return list
}

// Active returns the active view: the peers this node holds a link to.
func (n *Node) Active() []Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Peer(nil), n.active...)
}

// Passive returns the passive view: spare contacts.
func (n *Node) Passive() []Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Peer(nil), n.passive...)
}

// RTT returns the smoothed round-trip time of the link to an active peer.
func (n *Node) RTT(peer string) (time.Duration, bool) {
	n.mu.Lock()
	l := n.links[peer]
	n.mu.Unlock()
	if l == nil {
		return 0, false
	}
	return l.smoothedRTT()
}

// Send queues payload for an active peer. It never blocks: it fails with
// ErrNotActive if the peer is not in the active view, ErrQueueFull if the
// link's queue is full (the peer's consumer is behind, or the link is
// slow), and a *wire.FrameTooLargeError if the payload is larger than this
// node or the peer accepts. A payload Send accepted is delivered to the
// peer's consumer unless the link goes down first, which both sides'
// consumers see as LinkDown.
func (n *Node) Send(peer string, payload []byte) error {
	if err := n.tooLarge(peer, len(payload)); err != nil {
		return err
	}
	return n.enqueue(peer, len(payload), wire.AppendFrame(nil, framePayload, payload))
}

// SendMany queues one payload for several active peers, as Send would for
// each, but frames it once: the links' writers share the frame, where a
// root's copies of a large batch would otherwise be copied per peer. It
// returns nil when every peer took the payload, else the error Send would
// have given for each peer (nil where it was taken).
func (n *Node) SendMany(peers []string, payload []byte) []error {
	var frame []byte // none for a payload every peer refuses
	if len(payload)+1 <= n.cfg.MaxFrame {
		frame = wire.AppendFrame(nil, framePayload, payload)
	}
	var errs []error
	for i, peer := range peers {
		err := n.tooLarge(peer, len(payload))
		if err == nil {
			err = n.enqueue(peer, len(payload), frame)
		}
		if err != nil {
			if errs == nil {
				errs = make([]error, len(peers))
			}
			errs[i] = err
		}
	}
	return errs
}

// tooLarge refuses a payload of size bytes that would make a frame over
// this node's MaxFrame.
func (n *Node) tooLarge(peer string, size int) error {
	if size+1 > n.cfg.MaxFrame {
		return fmt.Errorf("membership: send to %s: %w", peer, &wire.FrameTooLargeError{Size: size + 1, Max: n.cfg.MaxFrame})
	}
	return nil
}

// enqueue hands a payload's frame to peer's link. The frame is never
// written to once queued, so one frame may wait on several links.
func (n *Node) enqueue(peer string, size int, frame []byte) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	l := n.links[peer]
	active := containsPeer(n.active, peer)
	n.mu.Unlock()
	if !active || l == nil {
		return fmt.Errorf("membership: send to %s: %w", peer, ErrNotActive)
	}
	if peerMax := int(l.peerMaxFrame.Load()); peerMax > 0 && size+1 > peerMax {
		return fmt.Errorf("membership: send to %s: the peer's limit: %w", peer, &wire.FrameTooLargeError{Size: size + 1, Max: peerMax})
	}
	if n.writeDirect(l, frame) {
		return nil
	}
	if !l.enqueueData(frame) {
		return fmt.Errorf("membership: send to %s: %w", peer, ErrQueueFull)
	}
	return nil
}

// SetIncarnation advertises a newer incarnation of this process's
// registry state in memberlist's metadata (a refute moved it forward), so
// that a node that later rules this one dead names the incarnation it
// last ran. An incarnation not newer than the advertised one is ignored.
// It does not wait for the update to spread.
func (n *Node) SetIncarnation(inc uint64) {
	if n.gossip.setIncarnation(inc) {
		n.spawn(n.gossip.announce)
	}
}

// Join enters the cluster through the memberlist addresses of running
// nodes: it joins memberlist, then asks a member (picked at random among
// those memberlist knows) to take this node into the overlay, trying others
// until one accepts. It returns once this node has an active link, or with
// an error if no contact answers or ctx ends first.
func (n *Node) Join(ctx context.Context, contacts ...string) error {
	if len(contacts) == 0 {
		return errors.New("membership: join: no contact address given")
	}
	if err := n.gossip.join(contacts); err != nil {
		return err
	}
	n.mu.Lock()
	n.joined = true
	n.mu.Unlock()
	// An attempt waits for the core's own timeout plus a margin for the
	// network before trying the next member.
	attemptWait := time.Duration(n.cfg.HyParView.NeighborTimeoutTicks+5) * n.cfg.TickInterval
	poll := time.NewTicker(n.cfg.TickInterval / 2)
	defer poll.Stop()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	tried := 0
	for {
		if len(n.Active()) > 0 {
			return nil
		}
		members := n.gossip.overlayPeers()
		rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		for _, m := range members {
			tried++
			if !n.input(coreInput{kind: inputJoin, peer: m}) {
				return ErrClosed
			}
			deadline := time.NewTimer(attemptWait)
		wait:
			for {
				select {
				case <-ctx.Done():
					deadline.Stop()
					return fmt.Errorf("membership: join through %v: no overlay link after %d attempts: %w", contacts, tried, ctx.Err())
				case <-n.done:
					deadline.Stop()
					return ErrClosed
				case <-deadline.C:
					break wait
				case <-poll.C:
					if len(n.Active()) > 0 {
						deadline.Stop()
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("membership: join through %v: no overlay link after %d attempts: %w", contacts, tried, ctx.Err())
		case <-n.done:
			return ErrClosed
		case <-poll.C:
		}
	}
}

// Close leaves the cluster gracefully (memberlist records the node as left,
// and its peers replace their links to it) and stops every goroutine.
func (n *Node) Close() error {
	return n.shutdown(true)
}

// shutdown stops the node; without graceful, it vanishes as a crash would:
// no leave message, sockets simply closed.
func (n *Node) shutdown(graceful bool) error {
	err := ErrClosed
	n.closeOnce.Do(func() {
		if graceful {
			n.gossip.leave()
		}
		n.mu.Lock()
		n.closed = true
		conns := make([]*link, 0, len(n.conns))
		for l := range n.conns {
			conns = append(conns, l)
		}
		raw := make([]net.Conn, 0, len(n.raw))
		for c := range n.raw {
			raw = append(raw, c)
		}
		n.mu.Unlock()
		close(n.done)
		n.cancel()
		n.ln.Close()
		for _, l := range conns {
			l.abort()
		}
		for _, c := range raw {
			c.Close()
		}
		err = n.gossip.shutdown()
		n.wg.Wait()
		n.table.close()
	})
	return err
}

// dialAddr opens a TCP connection to an overlay address within timeout,
// through NodeConfig.Dial when it is set; Close cancels it.
func (n *Node) dialAddr(addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(n.closing, timeout)
	defer cancel()
	if n.cfg.Dial != nil {
		return n.cfg.Dial(ctx, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// now is the node's monotonic clock, used for keepalive and RTT.
func (n *Node) now() time.Duration { return time.Since(n.start) }

// spawn runs f on a goroutine the node waits for at Close; false if the
// node is closing.
func (n *Node) spawn(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// input hands in to the loop; false if the node is closing.
func (n *Node) input(in coreInput) bool {
	select {
	case n.inputs <- in:
		return true
	case <-n.done:
		return false
	}
}

func containsPeer(peers []Peer, name string) bool {
	for _, p := range peers {
		if p.Name == name {
			return true
		}
	}
	return false
}
