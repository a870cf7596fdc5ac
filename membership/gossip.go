package membership

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cpggo/cpg/internal/wire"
	"github.com/hashicorp/memberlist"
)

// GossipConfig holds the memberlist timings, exposed so that an operator can
// trade detection speed for traffic. A zero field takes the value of
// DefaultGossipConfig.
type GossipConfig struct {
	ProbeInterval    time.Duration // how often each node probes a random member
	ProbeTimeout     time.Duration // how long a probe waits for its ack before asking others
	GossipInterval   time.Duration // how often queued updates are gossiped
	SuspicionMult    int           // suspicion lasts SuspicionMult * log(N+1) * ProbeInterval before a node is declared dead
	PushPullInterval time.Duration // full state exchange period
	TCPTimeout       time.Duration // timeout of memberlist's TCP exchanges (join, push/pull)
	LeaveTimeout     time.Duration // how long Close waits for the leave to propagate
	// DeadNodeReclaimTime is how long after a node is declared dead
	// another process may take its name from a different address (a node
	// restarted elsewhere). Zero, memberlist's default, never allows it;
	// a node that left gracefully may always come back.
	DeadNodeReclaimTime time.Duration
	// ReconnectInterval is how often the node tries to reach one member
	// memberlist declared dead (not one that left), as Serf does: after a
	// partition longer than memberlist's own gossip to the dead, the two
	// sides have given each other up and only such an attempt joins them
	// again. Default 2 s: Serf's 30 s would leave a healed partition of a
	// small cluster apart for tens of seconds, since only about one attempt
	// per interval goes out cluster-wide when few members failed.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a dead member is retried. Default 1 h.
	ReconnectTimeout time.Duration
}

// DefaultGossipConfig returns timings for a LAN: memberlist's LAN defaults
// (memberlist.DefaultLANConfig) with probes twice as often (every 500 ms,
// 250 ms to answer: a LAN's round trips are well under a millisecond), a
// suspicion of 3 rather than 4 probe intervals per log(N+1), and a bounded
// leave. A hung node (SIGSTOP) is then ruled dead in about 2.5-3 s on a
// small cluster, where memberlist's own defaults take 5-6 s; the probes
// cost each node one small UDP round trip per 500 ms.
func DefaultGossipConfig() GossipConfig {
	lan := memberlist.DefaultLANConfig()
	return GossipConfig{
		ProbeInterval:    lan.ProbeInterval / 2,
		ProbeTimeout:     lan.ProbeTimeout / 2,
		GossipInterval:   lan.GossipInterval,
		SuspicionMult:    3,
		PushPullInterval: lan.PushPullInterval,
		TCPTimeout:       lan.TCPTimeout,
		LeaveTimeout:     time.Second,

		ReconnectInterval: 2 * time.Second,
		ReconnectTimeout:  time.Hour,
	}
}

// LoopbackGossipConfig returns timings for nodes on one host (tests,
// development): round trips are well under a millisecond, so probes and
// suspicion can be an order of magnitude shorter than on a LAN.
func LoopbackGossipConfig() GossipConfig {
	return GossipConfig{
		ProbeInterval:    200 * time.Millisecond,
		ProbeTimeout:     100 * time.Millisecond,
		GossipInterval:   50 * time.Millisecond,
		SuspicionMult:    3,
		PushPullInterval: 5 * time.Second,
		TCPTimeout:       2 * time.Second,
		LeaveTimeout:     500 * time.Millisecond,

		DeadNodeReclaimTime: time.Second,
		ReconnectInterval:   time.Second,
		ReconnectTimeout:    time.Minute,
	}
}

func (g GossipConfig) withDefaults() GossipConfig {
	d := DefaultGossipConfig()
	if g.ProbeInterval <= 0 {
		g.ProbeInterval = d.ProbeInterval
	}
	if g.ProbeTimeout <= 0 {
		g.ProbeTimeout = d.ProbeTimeout
	}
	if g.GossipInterval <= 0 {
		g.GossipInterval = d.GossipInterval
	}
	if g.SuspicionMult <= 0 {
		g.SuspicionMult = d.SuspicionMult
	}
	if g.PushPullInterval <= 0 {
		g.PushPullInterval = d.PushPullInterval
	}
	if g.TCPTimeout <= 0 {
		g.TCPTimeout = d.TCPTimeout
	}
	if g.LeaveTimeout <= 0 {
		g.LeaveTimeout = d.LeaveTimeout
	}
	if g.ReconnectInterval <= 0 {
		g.ReconnectInterval = d.ReconnectInterval
	}
	if g.ReconnectTimeout <= 0 {
		g.ReconnectTimeout = d.ReconnectTimeout
	}
	return g
}

// nodeMeta is what a node publishes through memberlist: where its overlay
// and HTTP listeners are, and whether it is leaving (memberlist reports a
// graceful leave and a death the same way; the flag tells them apart).
type nodeMeta struct {
	Addr        string
	HTTPAddr    string
	Incarnation uint64
	Leaving     bool
}

const nodeMetaVersion = 2

func appendNodeMeta(b []byte, m nodeMeta) []byte {
	b = append(b, nodeMetaVersion)
	b = wire.AppendString(b, m.Addr)
	b = wire.AppendString(b, m.HTTPAddr)
	b = wire.AppendUvarint(b, m.Incarnation)
	return wire.AppendBool(b, m.Leaving)
}

func decodeNodeMeta(b []byte) (nodeMeta, error) {
	d := wire.NewDecoder(b)
	if v := d.Byte(); d.Err() == nil && v != nodeMetaVersion {
		return nodeMeta{}, fmt.Errorf("membership: node metadata version %d, want %d", v, nodeMetaVersion)
	}
	m := nodeMeta{Addr: d.String(maxHelloAddr), HTTPAddr: d.String(maxHelloAddr), Incarnation: d.Uvarint(), Leaving: d.Bool()}
	if err := d.Finish(); err != nil {
		return nodeMeta{}, fmt.Errorf("membership: node metadata: %w", err)
	}
	return m, nil
}

// gossip runs memberlist for one node: the first contact for a JOIN, the
// contacts for a rejoin, and the cluster's verdict on deaths.
type gossip struct {
	ml     *memberlist.Memberlist
	self   string
	table  *statusTable
	log    *slog.Logger
	leaveT time.Duration
	// bound is memberlist's address with the port it got, read once at
	// start: memberlist's record of the local node, which LocalNode points
	// into, is rewritten under its lock by every UpdateNode.
	bound string

	// updating serialises UpdateNode (an announce, the leave): memberlist
	// reads the local node's record outside its lock there, while another
	// UpdateNode may be rewriting it.
	updating sync.Mutex

	mu    sync.Mutex
	meta  nodeMeta            // ours
	peers map[string]nodeMeta // live members' metadata, copied in memberlist's callbacks
	dead  map[string]deadMember
	left  map[string]time.Time // members that left gracefully, and when
	// version counts changes of peers, dead and left, so that the loop
	// copies them into its directory only when they changed.
	version uint64
}

// deadMember is a member memberlist declared dead: where to try it again,
// and since when.
type deadMember struct {
	addr  string
	since time.Time
}

// gossipSecret derives memberlist's AES key from the cluster key, so that
// the one secret an operator configures protects both layers while neither
// layer's key can be read from the other's traffic.
func gossipSecret(clusterKey []byte) []byte {
	if len(clusterKey) == 0 {
		return nil
	}
	sum := sha256.Sum256(append([]byte("cpg memberlist key\x00"), clusterKey...))
	return sum[:]
}

// memberlistConfig is the memberlist configuration of a node: its LAN
// defaults with the node's address, cluster label, key and timings.
func memberlistConfig(cfg NodeConfig, name, host string, port int) *memberlist.Config {
	timing := cfg.Gossip
	mc := memberlist.DefaultLANConfig()
	mc.Name = name
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertisePort = port
	mc.Label = cfg.ClusterLabel
	mc.SecretKey = gossipSecret(cfg.ClusterKey)
	mc.ProbeInterval = timing.ProbeInterval
	mc.ProbeTimeout = timing.ProbeTimeout
	mc.GossipInterval = timing.GossipInterval
	mc.SuspicionMult = timing.SuspicionMult
	mc.PushPullInterval = timing.PushPullInterval
	mc.TCPTimeout = timing.TCPTimeout
	mc.DeadNodeReclaimTime = timing.DeadNodeReclaimTime
	// Compression allocates a 64 KiB LZW table for every packet sent,
	// whatever its size, and the packets are a few hundred bytes that
	// rarely shrink: it was the largest allocation of a node (a third of
	// all its bytes during a stream of single changes), and a good share
	// of its garbage collections. Peers that compress are still read.
	mc.EnableCompression = false
	if cfg.Logger != nil {
		// memberlist writes "[LEVEL] memberlist: ..." lines; at debug
		// level they stay out of an info-level log.
		mc.Logger = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)
	} else {
		mc.LogOutput = io.Discard
	}
	return mc
}

func startGossip(cfg NodeConfig, self Peer, table *statusTable, logger *slog.Logger) (*gossip, error) {
	host, portStr, err := net.SplitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("membership: gossip address %q: %w", cfg.GossipAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("membership: gossip address %q: bad port: %w", cfg.GossipAddr, err)
	}
	g := &gossip{
		self:   self.Name,
		table:  table,
		log:    logger,
		leaveT: cfg.Gossip.LeaveTimeout,
		meta:   nodeMeta{Addr: self.Addr, HTTPAddr: cfg.HTTPAddr, Incarnation: cfg.Incarnation},
		peers:  make(map[string]nodeMeta),
		dead:   make(map[string]deadMember),
		left:   make(map[string]time.Time),
	}
	mc := memberlistConfig(cfg, self.Name, host, port)
	mc.Delegate = g
	mc.Events = g
	mc.Ping = g
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		// Bound to one address: the node's own transport. An unspecified
		// address leaves memberlist's, which finds the private address to
		// advertise.
		logger := mc.Logger
		if logger == nil {
			logger = log.New(io.Discard, "", 0)
		}
		gt, err := listenGossip(ip, port, logger)
		if err != nil {
			return nil, fmt.Errorf("membership: start memberlist on %s: %w", cfg.GossipAddr, err)
		}
		mc.BindPort, mc.AdvertisePort = gt.port(), gt.port()
		mc.Transport = gt
		if cfg.WrapGossipTransport != nil {
			mc.Transport = cfg.WrapGossipTransport(gt)
		}
	} else if cfg.WrapGossipTransport != nil {
		nt, err := openGossipTransport(host, port, mc.Logger)
		if err != nil {
			return nil, fmt.Errorf("membership: start memberlist on %s: %w", cfg.GossipAddr, err)
		}
		mc.BindPort, mc.AdvertisePort = nt.GetAutoBindPort(), nt.GetAutoBindPort()
		mc.Transport = cfg.WrapGossipTransport(nt)
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		if mc.Transport != nil {
			_ = mc.Transport.Shutdown() // memberlist leaves a transport it was given open
		}
		return nil, fmt.Errorf("membership: start memberlist on %s: %w", cfg.GossipAddr, err)
	}
	g.ml = ml
	local := ml.LocalNode()
	g.bound = net.JoinHostPort(local.Addr.String(), strconv.Itoa(int(local.Port)))
	return g, nil
}

// openGossipTransport opens the transport memberlist would open itself,
// for NodeConfig.WrapGossipTransport to wrap. Like memberlist, it retries a
// port the kernel picked (port 0): the TCP and UDP halves must get the same
// one, and the UDP port may already be taken.
func openGossipTransport(host string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	cfg := &memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: logger}
	attempts := 1
	if port == 0 {
		attempts = 10
	}
	var err error
	for range attempts {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(cfg); err == nil {
			return nt, nil
		}
	}
	return nil, err
}

// addr is memberlist's bound address, with the port it actually got.
func (g *gossip) addr() string { return g.bound }

func (g *gossip) join(contacts []string) error {
	joined, err := g.ml.Join(contacts)
	if joined == 0 {
		if err == nil {
			err = errors.New("no contact answered")
		}
		return fmt.Errorf("membership: join through %v: no contact reachable: %w", contacts, err)
	}
	return nil
}

// overlayPeers returns the live members other than self that publish an
// overlay address and are not leaving, by name. (memberlist.Members returns
// pointers into memberlist's own state, which it updates under its lock:
// reading their metadata races, so the callbacks keep a copy instead.)
func (g *gossip) overlayPeers() []Peer {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Peer, 0, len(g.peers))
	for name, meta := range g.peers {
		if name != g.self && meta.Addr != "" && !meta.Leaving {
			out = append(out, Peer{Name: name, Addr: meta.Addr})
		}
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (g *gossip) remember(name string, meta nodeMeta, live bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.version++
	if live {
		delete(g.left, name)
		g.peers[name] = meta
	} else {
		delete(g.peers, name)
	}
}

func (g *gossip) markDead(n *memberlist.Node, dead bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.version++
	if dead {
		g.dead[n.Name] = deadMember{addr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))), since: time.Now()}
	} else {
		delete(g.dead, n.Name)
	}
}

func (g *gossip) markLeft(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.version++
	g.left[name] = time.Now()
}

// refresh copies memberlist's view into dir if it changed since the last
// copy, forgetting failed and left members older than timeout (the
// reconnect policy gives them up then).
func (g *gossip) refresh(dir *memberDirectory, now time.Time, timeout time.Duration) {
	dir.now = now
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, d := range g.dead {
		if now.Sub(d.since) > timeout {
			delete(g.dead, name)
			g.version++
		}
	}
	for name, at := range g.left {
		if now.Sub(at) > timeout {
			delete(g.left, name)
			g.version++
		}
	}
	if dir.version == g.version && dir.filled {
		return
	}
	dir.version, dir.filled = g.version, true
	dir.alive = dir.alive[:0]
	for name, meta := range g.peers {
		if name != g.self && meta.Addr != "" && !meta.Leaving {
			dir.alive = append(dir.alive, Peer{Name: name, Addr: meta.Addr})
		}
	}
	slices.SortFunc(dir.alive, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	dir.failed = dir.failed[:0]
	clear(dir.gone)
	for name, d := range g.dead {
		dir.failed = append(dir.failed, failedPeer{peer: Peer{Name: name, Addr: d.addr}, since: d.since})
		dir.gone[name] = true
	}
	slices.SortFunc(dir.failed, func(a, b failedPeer) int { return strings.Compare(a.peer.Name, b.peer.Name) })
	for name := range g.left {
		dir.gone[name] = true
	}
}

// memberDirectory is the core's hyparview.Directory over memberlist: a
// copy the loop refreshes before every tick, so that the core reads a
// consistent list without holding gossip's lock. Failed members carry
// their memberlist address, which Ready.Reconnect hands back for a join.
type memberDirectory struct {
	version uint64
	filled  bool
	now     time.Time
	tick    time.Duration
	alive   []Peer
	failed  []failedPeer
	gone    map[string]bool
}

type failedPeer struct {
	peer  Peer
	since time.Time
}

func newMemberDirectory(tick time.Duration) *memberDirectory {
	return &memberDirectory{tick: tick, gone: make(map[string]bool)}
}

// Members implements hyparview.Directory.
func (d *memberDirectory) Members() int { return len(d.alive) }

// Member implements hyparview.Directory.
func (d *memberDirectory) Member(i int) Peer { return d.alive[i] }

// Failed implements hyparview.Directory.
func (d *memberDirectory) Failed() int { return len(d.failed) }

// FailedMember implements hyparview.Directory.
func (d *memberDirectory) FailedMember(i int) (Peer, int) {
	f := d.failed[i]
	return f.peer, int(d.now.Sub(f.since) / d.tick)
}

// Gone implements hyparview.Directory.
func (d *memberDirectory) Gone(name string) bool { return d.gone[name] }

// leave announces the departure: first the leaving flag in the metadata (so
// that others record "left", not "dead"), then memberlist's own leave.
func (g *gossip) leave() {
	g.mu.Lock()
	g.meta.Leaving = true
	g.mu.Unlock()
	g.updating.Lock()
	defer g.updating.Unlock()
	if err := g.ml.UpdateNode(g.leaveT); err != nil {
		g.log.Debug("membership: announce leave", "err", err)
	}
	if err := g.ml.Leave(g.leaveT); err != nil {
		g.log.Debug("membership: leave", "err", err)
	}
}

// setIncarnation advertises a newer registry incarnation; false if inc is
// not newer than the one advertised.
func (g *gossip) setIncarnation(inc uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if inc <= g.meta.Incarnation {
		return false
	}
	g.meta.Incarnation = inc
	return true
}

// announce gossips this node's metadata again, waiting at most the leave
// timeout for the update to go out. Once the leave began it does nothing:
// memberlist drops an update after its leave, and this one would then
// hold Close for the whole timeout, waiting for a broadcast that never
// comes.
func (g *gossip) announce() {
	g.updating.Lock()
	defer g.updating.Unlock()
	g.mu.Lock()
	leaving := g.meta.Leaving
	g.mu.Unlock()
	if leaving {
		return
	}
	if err := g.ml.UpdateNode(g.leaveT); err != nil {
		g.log.Debug("membership: announce metadata", "err", err)
	}
}

func (g *gossip) shutdown() error { return g.ml.Shutdown() }

func (g *gossip) info(n *memberlist.Node, status NodeStatus) (NodeInfo, nodeMeta) {
	meta, err := decodeNodeMeta(n.Meta)
	if err != nil && len(n.Meta) > 0 {
		g.log.Debug("membership: bad node metadata", "node", n.Name, "err", err)
	}
	return NodeInfo{
		Name:        n.Name,
		Addr:        meta.Addr,
		HTTPAddr:    meta.HTTPAddr,
		Incarnation: meta.Incarnation,
		GossipAddr:  n.Address(),
		Status:      status,
	}, meta
}

// memberlist.Delegate: only the metadata is used; the overlay carries
// everything else.

func (g *gossip) NodeMeta(limit int) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := appendNodeMeta(nil, g.meta)
	if len(b) > limit {
		// Addresses are bounded well below memberlist's limit; a config
		// that breaks it is caught at Start.
		return nil
	}
	return b
}
func (g *gossip) NotifyMsg([]byte)                           {}
func (g *gossip) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (g *gossip) LocalState(join bool) []byte                { return nil }
func (g *gossip) MergeRemoteState(buf []byte, join bool)     {}

// memberlist.EventDelegate: these run on memberlist's goroutines; they only
// update the status table, which never blocks.

func (g *gossip) NotifyJoin(n *memberlist.Node) {
	info, meta := g.info(n, StatusAlive)
	g.remember(n.Name, meta, true)
	g.markDead(n, false)
	g.table.set(info)
}

func (g *gossip) NotifyUpdate(n *memberlist.Node) {
	info, meta := g.info(n, StatusAlive)
	g.remember(n.Name, meta, true)
	if prev, ok := g.table.get(n.Name); ok && prev.Status == StatusSuspect {
		info.Status = StatusSuspect
	}
	if meta.Leaving {
		// Still a member until its leave arrives; record the addresses.
		info.Status = StatusAlive
	}
	g.table.set(info)
}

func (g *gossip) NotifyLeave(n *memberlist.Node) {
	// memberlist's Node.State is not filled in for these callbacks, so the
	// leaving flag in the metadata is what tells a leave from a death.
	info, meta := g.info(n, StatusDead)
	if meta.Leaving {
		info.Status = StatusLeft
	}
	g.remember(n.Name, meta, false)
	g.markDead(n, !meta.Leaving)
	if meta.Leaving {
		g.markLeft(n.Name)
	}
	g.table.set(info)
}

// memberlist.PingDelegate: a completed probe is proof of life and an RTT
// sample for nodes we have no overlay link to.

func (g *gossip) AckPayload() []byte { return nil }

func (g *gossip) NotifyPingComplete(n *memberlist.Node, rtt time.Duration, _ []byte) {
	g.table.clearSuspicion(n.Name, rtt)
}
