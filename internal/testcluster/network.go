package testcluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// LinkFaults are the faults of one directed link, applied to each message
// the broadcast layer sends over it.
type LinkFaults struct {
	// Drop is the probability that a message is lost.
	Drop float64
	// Duplicate is the probability that a message is delivered twice.
	Duplicate float64
	// DelayMin and DelayMax bound the delay of each copy, drawn uniformly;
	// delayed messages may overtake each other.
	DelayMin, DelayMax time.Duration
}

func (f LinkFaults) none() bool { return f == LinkFaults{} }

// network is the fabric under every node of a Cluster: it knows which node
// listens where, which nodes are cut from which, and which are dead.
type network struct {
	mu  sync.Mutex
	rng *rand.Rand
	// changed is closed, and replaced, whenever reachability changes: a
	// write or dial waiting out a partition looks again.
	changed chan struct{}
	side    map[string]int // partition side of each node; unlisted nodes are on side 0
	dead    map[string]bool
	// Which node owns an address: overlay listeners, memberlist's
	// transports, and the local end of every connection a node dialed (the
	// accepting end learns its peer from it).
	overlay map[string]string
	bound   map[string]string // node -> its last overlay listener's address
	gossip  map[string]string
	dialers map[string]string
	conns   map[string]map[*faultConn]struct{} // each node's open connections
	lns     map[string]map[*faultListener]struct{}
	faults  map[[2]string]LinkFaults
}

func newNetwork(seed int64) *network {
	return &network{
		rng:     rand.New(rand.NewPCG(uint64(seed), 0x5eed)),
		changed: make(chan struct{}),
		side:    make(map[string]int),
		dead:    make(map[string]bool),
		overlay: make(map[string]string),
		bound:   make(map[string]string),
		gossip:  make(map[string]string),
		dialers: make(map[string]string),
		conns:   make(map[string]map[*faultConn]struct{}),
		lns:     make(map[string]map[*faultListener]struct{}),
		faults:  make(map[[2]string]LinkFaults),
	}
}

// reachableLocked reports whether bytes from a reach b; an unknown node
// ("") is cut only from the dead. n.mu is held.
func (n *network) reachableLocked(a, b string) bool {
	return !n.dead[a] && !n.dead[b] && n.side[a] == n.side[b]
}

func (n *network) notifyLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// partition puts each listed set of nodes on a side of its own; nodes not
// listed share one more side.
func (n *network) partition(sides [][]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.side)
	for i, names := range sides {
		for _, name := range names {
			n.side[name] = i + 1
		}
	}
	n.notifyLocked()
}

func (n *network) heal() { n.partition(nil) }

// revive lets a node that was killed start again.
func (n *network) revive(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.dead, name)
	n.notifyLocked()
}

// kill cuts a node off at once and closes its sockets as its kernel would
// when its process dies: its peers read the end of their connections, and
// dials to its listener are refused.
func (n *network) kill(name string) {
	n.mu.Lock()
	n.dead[name] = true
	n.notifyLocked()
	conns := n.conns[name]
	delete(n.conns, name)
	lns := n.lns[name]
	delete(n.lns, name)
	n.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	for l := range lns {
		l.Close()
	}
}

// waitReachable blocks while a cannot reach b, as a write into a
// partitioned TCP connection or a dial across it would, until the
// partition heals, cancel closes or deadline passes (zero: none).
func (n *network) waitReachable(a, b string, cancel <-chan struct{}, deadline time.Time) error {
	var timer <-chan time.Time
	for {
		n.mu.Lock()
		if n.dead[a] {
			n.mu.Unlock()
			return net.ErrClosed
		}
		if n.reachableLocked(a, b) {
			n.mu.Unlock()
			return nil
		}
		changed := n.changed
		n.mu.Unlock()
		if timer == nil && !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-changed:
		case <-cancel:
			return net.ErrClosed
		case <-timer:
			return os.ErrDeadlineExceeded
		}
	}
}

// refused is the error a dial to a dead node's port gets.
func refused(addr string) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: tcpAddr(addr), Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

func tcpAddr(addr string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil
	}
	return a
}

// dial opens a TCP connection from node from to addr through the network.
func (n *network) dial(ctx context.Context, from, addr string) (net.Conn, error) {
	n.mu.Lock()
	to := n.overlay[addr]
	if to == "" {
		to = n.gossip[addr]
	}
	deadTarget := to != "" && n.dead[to]
	n.mu.Unlock()
	if deadTarget {
		return nil, refused(addr)
	}
	deadline, _ := ctx.Deadline()
	if err := n.waitReachable(from, to, ctx.Done(), deadline); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: tcpAddr(addr), Err: err}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &faultConn{Conn: raw, nw: n, local: from, remote: to, closed: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dead[from] {
		raw.Close()
		return nil, fmt.Errorf("testcluster: %s is dead: %w", from, net.ErrClosed)
	}
	n.dialers[raw.LocalAddr().String()] = from
	n.trackLocked(from, c)
	return c, nil
}

func (n *network) trackLocked(node string, c *faultConn) {
	set := n.conns[node]
	if set == nil {
		set = make(map[*faultConn]struct{})
		n.conns[node] = set
	}
	set[c] = struct{}{}
}

func (n *network) untrack(c *faultConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.conns[c.local], c)
	if n.dialers[c.LocalAddr().String()] == c.local {
		delete(n.dialers, c.LocalAddr().String())
	}
}

// listen opens node's overlay listener on addr through the network.
func (n *network) listen(node, addr string) (net.Listener, error) {
	n.mu.Lock()
	dead := n.dead[node]
	n.mu.Unlock()
	if dead {
		return nil, fmt.Errorf("testcluster: %s is dead: %w", node, net.ErrClosed)
	}
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &faultListener{Listener: raw, nw: n, node: node}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.overlay[raw.Addr().String()] = node
	n.bound[node] = raw.Addr().String()
	set := n.lns[node]
	if set == nil {
		set = make(map[*faultListener]struct{})
		n.lns[node] = set
	}
	set[l] = struct{}{}
	return l, nil
}

// overlayAddr returns the address node's last overlay listener bound.
func (n *network) overlayAddr(node string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bound[node]
}

// registerGossip records the memberlist address of node.
func (n *network) registerGossip(node, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gossip[addr] = node
}

// gossipReachable reports whether a packet from node from reaches the
// node at a memberlist address.
func (n *network) gossipReachable(from, addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.reachableLocked(from, n.gossip[addr])
}

func (n *network) setLinkFaults(from, to string, f LinkFaults) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f.none() {
		delete(n.faults, [2]string{from, to})
		return
	}
	n.faults[[2]string{from, to}] = f
}

func (n *network) clearLinkFaults() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.faults)
}

// fate draws what happens to one message on the link from a to b: the
// delays of the copies delivered (none: lost).
func (n *network) fate(from, to string) (delays []time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f, ok := n.faults[[2]string{from, to}]
	if !ok {
		return []time.Duration{0}
	}
	if n.rng.Float64() < f.Drop {
		return nil
	}
	copies := 1
	if n.rng.Float64() < f.Duplicate {
		copies = 2
	}
	for range copies {
		d := f.DelayMin
		if span := f.DelayMax - f.DelayMin; span > 0 {
			d += time.Duration(n.rng.Int64N(int64(span)))
		}
		delays = append(delays, d)
	}
	return delays
}

// faultConn is one end of a TCP connection in the network: while its two
// nodes are cut apart, writes wait (the bytes stay with the sender, as
// with a real partition), so a short cut delays the stream and a long one
// ends in the keepalive's verdict.
type faultConn struct {
	net.Conn
	nw     *network
	local  string
	remote string // "" until known, for an accepted connection

	mu            sync.Mutex
	writeDeadline time.Time
	closeOnce     sync.Once
	closed        chan struct{}
}

// peer returns the node at the other end; an accepted connection learns it
// from the dialer's record, which exists before the first byte arrives.
func (c *faultConn) peer() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.remote == "" {
		c.nw.mu.Lock()
		c.remote = c.nw.dialers[c.Conn.RemoteAddr().String()]
		c.nw.mu.Unlock()
	}
	return c.remote
}

func (c *faultConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	deadline := c.writeDeadline
	c.mu.Unlock()
	if err := c.nw.waitReachable(c.local, c.peer(), c.closed, deadline); err != nil {
		return 0, &net.OpError{Op: "write", Net: "tcp", Addr: c.RemoteAddr(), Err: err}
	}
	return c.Conn.Write(b)
}

func (c *faultConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.writeDeadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *faultConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.writeDeadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *faultConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.nw.untrack(c)
	})
	return c.Conn.Close()
}

// faultListener accepts a node's overlay connections into the network.
type faultListener struct {
	net.Listener
	nw   *network
	node string
}

func (l *faultListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &faultConn{Conn: raw, nw: l.nw, local: l.node, closed: make(chan struct{})}
	l.nw.mu.Lock()
	defer l.nw.mu.Unlock()
	if l.nw.dead[l.node] {
		raw.Close()
		return nil, net.ErrClosed
	}
	l.nw.trackLocked(l.node, c)
	return c, nil
}

func (l *faultListener) Close() error {
	l.nw.mu.Lock()
	delete(l.nw.lns[l.node], l)
	l.nw.mu.Unlock()
	return l.Listener.Close()
}
