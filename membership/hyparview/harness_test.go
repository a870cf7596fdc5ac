package hyparview

import (
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
)

// testNet runs HyParView cores in memory: it collects what each core asks
// to send, holds the messages in flight, and delivers them when told, in
// the order the test chooses. It plays the driver's part faithfully: it
// keeps the links each node's Ready reported (Down before Up) and checks
// them against the core's active view, and a message to a dead node makes
// the sender's driver report LinkFailed.
type testNet struct {
	rng      *rand.Rand
	cfg      Config
	nodes    map[string]*Protocol
	names    []string // creation order, for deterministic iteration
	dead     map[string]bool
	inflight []packet
	links    map[string]map[string]bool // per node, the peers its Ready reported up
	sent     map[byte]int               // messages sent, by wire type
	side     map[string]int             // while partitioned, each node's side
	log      *strings.Builder           // when set, what happens is written here
}

type packet struct {
	from, to  Peer
	msg       ProtocolMessage
	transient bool
}

func (p packet) String() string {
	s := fmt.Sprintf("%s -> %s: %s", p.from.Name, p.to.Name, p.msg)
	if p.transient {
		s += " (transient)"
	}
	return s
}

func newTestNet(seed int64, cfg Config) *testNet {
	return &testNet{
		rng:   rand.New(rand.NewSource(seed)),
		cfg:   cfg,
		nodes: make(map[string]*Protocol),
		dead:  make(map[string]bool),
		links: make(map[string]map[string]bool),
		sent:  make(map[byte]int),
	}
}

func (n *testNet) add(name string) *Protocol {
	h := New(Peer{Name: name}, n.cfg, rand.New(rand.NewSource(n.rng.Int63())))
	n.nodes[name] = h
	n.names = append(n.names, name)
	n.links[name] = make(map[string]bool)
	return h
}

func (n *testNet) live() []string {
	out := make([]string, 0, len(n.names))
	for _, name := range n.names {
		if !n.dead[name] {
			out = append(out, name)
		}
	}
	return out
}

// collect drains every live node's Ready, in creation order.
func (n *testNet) collect() error {
	for _, name := range n.names {
		if n.dead[name] {
			continue
		}
		if err := n.collectFrom(name); err != nil {
			return err
		}
	}
	return nil
}

func (n *testNet) collectFrom(name string) error {
	h := n.nodes[name]
	rd := h.Ready()
	links := n.links[name]
	for _, d := range rd.Down {
		if !links[d.Peer.Name] {
			return fmt.Errorf("%s: Down %s (%s) for a peer that was not up", name, d.Peer.Name, d.Reason)
		}
		delete(links, d.Peer.Name)
		n.logf("%s: link down %s (%s)", name, d.Peer.Name, d.Reason)
	}
	for _, p := range rd.Up {
		if links[p.Name] {
			return fmt.Errorf("%s: Up %s for a peer already up", name, p.Name)
		}
		links[p.Name] = true
		n.logf("%s: link up %s", name, p.Name)
	}
	active := h.Active()
	if len(active) != len(links) {
		return fmt.Errorf("%s: Ready reported links %v but the active view is %v", name, keys(links), active)
	}
	for _, p := range active {
		if !links[p.Name] {
			return fmt.Errorf("%s: Ready reported links %v but the active view is %v", name, keys(links), active)
		}
	}
	for _, env := range rd.Messages {
		p := packet{from: h.Self(), to: env.To, msg: env.Msg, transient: env.Transient}
		n.logf("sent %s", p)
		n.sent[env.Msg.messageType()]++
		n.inflight = append(n.inflight, p)
	}
	return nil
}

// deliver hands in-flight message i to its recipient and collects what the
// recipient (or, if the recipient is dead, the sender) does about it.
func (n *testNet) deliver(i int) error {
	p := n.inflight[i]
	n.inflight = slices.Delete(n.inflight, i, i+1)
	if n.dead[p.to.Name] || n.cut(p.from.Name, p.to.Name) {
		if n.dead[p.from.Name] {
			return nil
		}
		n.logf("undeliverable %s", p)
		if p.transient {
			n.nodes[p.from.Name].TransientFailed(p.to)
		} else {
			n.nodes[p.from.Name].LinkFailed(p.to)
		}
		return n.collectFrom(p.from.Name)
	}
	n.logf("deliver %s", p)
	n.nodes[p.to.Name].Step(p.from, p.msg)
	return n.collectFrom(p.to.Name)
}

// drain delivers in-flight messages in random order until none is left.
func (n *testNet) drain() error {
	for steps := 0; len(n.inflight) > 0; steps++ {
		if steps > 1_000_000 {
			return fmt.Errorf("messages keep flowing after %d deliveries", steps)
		}
		if err := n.deliver(n.rng.Intn(len(n.inflight))); err != nil {
			return err
		}
	}
	return nil
}

// tick advances every live node by one tick, then drains the network.
func (n *testNet) tick() error {
	n.tickNodes()
	if err := n.collect(); err != nil {
		return err
	}
	return n.drain()
}

// kill stops a node: every live node that held a link to it learns so from
// its driver, as a closed connection would tell it.
func (n *testNet) kill(name string) error {
	n.dead[name] = true
	for _, other := range n.live() {
		if n.links[other][name] {
			n.nodes[other].LinkFailed(Peer{Name: name})
			if err := n.collectFrom(other); err != nil {
				return err
			}
		}
	}
	return nil
}

// partition splits the live nodes into sides: messages between sides are
// lost, and every link across fails on both ends, as a keepalive timeout
// would report it. heal (a nil side map) lets messages through again; it
// restores no link.
func (n *testNet) partition(side map[string]int) error {
	n.side = side
	for _, name := range n.live() {
		for peer := range n.links[name] {
			if n.cut(name, peer) {
				n.nodes[name].LinkFailed(Peer{Name: peer})
			}
		}
		if err := n.collectFrom(name); err != nil {
			return err
		}
	}
	return nil
}

func (n *testNet) cut(a, b string) bool {
	return n.side != nil && n.side[a] != n.side[b]
}

func (n *testNet) logf(format string, args ...any) {
	if n.log != nil {
		fmt.Fprintf(n.log, format+"\n", args...)
	}
}

// check verifies the invariants that must hold once no message is in
// flight: views within bounds, self in neither, no peer in both, and the
// active views of live nodes symmetric, with the same link epoch on both
// sides and no dead peer.
func (n *testNet) check() error {
	for _, name := range n.live() {
		h := n.nodes[name]
		if err := checkViews(h); err != nil {
			return err
		}
		for _, a := range h.active {
			if n.dead[a.peer.Name] {
				return fmt.Errorf("%s keeps dead %s active", name, a.peer.Name)
			}
			other := n.nodes[a.peer.Name]
			j := other.activeIndex(name)
			if j < 0 {
				return fmt.Errorf("asymmetric: %s has %s active, not the reverse (%s; %s)", name, a.peer.Name, h, other)
			}
			if other.active[j].epoch != a.epoch {
				return fmt.Errorf("%s and %s disagree on the link epoch: %d and %d", name, a.peer.Name, a.epoch, other.active[j].epoch)
			}
		}
	}
	return nil
}

func checkViews(h *Protocol) error {
	active, passive := h.Active(), h.Passive()
	if len(active) > h.cfg.ActiveSize || len(passive) > h.cfg.PassiveSize {
		return fmt.Errorf("%s: views over their sizes: %d active, %d passive", h.self.Name, len(active), len(passive))
	}
	seen := make(map[string]bool)
	for _, p := range append(active, passive...) {
		if p.Name == h.self.Name {
			return fmt.Errorf("%s: self in its own views", h.self.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("%s: %s twice in the views", h.self.Name, p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// components returns the connected components of the live nodes' active
// graph, largest first.
func (n *testNet) components() [][]string {
	seen := make(map[string]bool)
	var comps [][]string
	for _, start := range n.live() {
		if seen[start] {
			continue
		}
		comp := []string{start}
		seen[start] = true
		for i := 0; i < len(comp); i++ {
			for _, p := range n.nodes[comp[i]].Active() {
				if !seen[p.Name] && !n.dead[p.Name] {
					seen[p.Name] = true
					comp = append(comp, p.Name)
				}
			}
		}
		comps = append(comps, comp)
	}
	sort.Slice(comps, func(i, j int) bool { return len(comps[i]) > len(comps[j]) })
	return comps
}

// activeSizes counts live nodes by the size of their active view.
func (n *testNet) activeSizes() map[int]int {
	hist := make(map[int]int)
	for _, name := range n.live() {
		hist[len(n.nodes[name].active)]++
	}
	return hist
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// tickSlow advances every live node by one tick and then delivers each
// in-flight message (including those sent meanwhile) with probability
// deliverProb, so that messages take several ticks, overtake each other and
// outlive the timeouts of the requests they answer.
func (n *testNet) tickSlow(deliverProb float64) error {
	n.tickNodes()
	if err := n.collect(); err != nil {
		return err
	}
	for i := len(n.inflight) - 1; i >= 0; i-- {
		if i < len(n.inflight) && n.rng.Float64() < deliverProb {
			if err := n.deliver(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// tickNodes ticks every live node; a node left Isolated joins again through
// a random live node, as the driver does through memberlist.
func (n *testNet) tickNodes() {
	live := n.live()
	for _, name := range live {
		h := n.nodes[name]
		h.Tick()
		if h.Isolated() && len(live) > 1 {
			contact := live[n.rng.Intn(len(live))]
			if contact != name {
				n.logf("%s: isolated, joins through %s", name, contact)
				h.Join(Peer{Name: contact})
			}
		}
	}
}

// liveDirectory is a Directory that lists the test network's live nodes in
// creation order, as a failure detector that never errs would.
type liveDirectory struct{ n *testNet }

func (d liveDirectory) Members() int      { return len(d.n.live()) }
func (d liveDirectory) Member(i int) Peer { return Peer{Name: d.n.live()[i]} }
func (d liveDirectory) Failed() int       { return 0 }
func (d liveDirectory) FailedMember(int) (Peer, int) {
	return Peer{}, 0
}
func (d liveDirectory) Gone(name string) bool { return d.n.dead[name] }
