package hyparview

// The overlay policy: what a node does about the rest of the cluster, which
// HyParView's own messages cannot see. Both the production driver and the
// simulator hand the core a Directory (the cluster's membership as the
// failure detector, memberlist, reports it) and carry out what the core
// decides on its ticks: Mix and Join messages through Ready.Messages, and
// memberlist joins through Ready.Reconnect. Each node runs the policy at
// its own random phase, so that a cluster never acts all at once.

// Directory is the cluster's membership as the node's failure detector
// reports it. The simulator implements it over arrays shared by many
// nodes, the driver over memberlist; the core only reads it, on its ticks.
type Directory interface {
	// Members is the number of members reported alive (the node itself
	// may be among them), and Member(i) the i-th of them, 0 <= i <
	// Members().
	Members() int
	Member(i int) Peer
	// Failed is the number of members reported failed (dead, not left)
	// and not yet given up, and FailedMember(i) the i-th of them with how
	// many ticks ago it was declared failed. Its Addr is whatever address
	// the driver's reconnect needs (memberlist's, for the driver).
	Failed() int
	FailedMember(i int) (peer Peer, ticksAgo int)
	// Gone reports that the member was declared dead or left: it is no
	// spare contact.
	Gone(name string) bool
}

// mixesPerInterval is how many Mix links the whole cluster makes per
// MixTicks, on average: enough to find a link across a healed partition
// within a few intervals, few enough not to disturb the overlay.
const mixesPerInterval = 2

// goneCheckTicks spaces the passive view's check against the directory.
const goneCheckTicks = 10

// SetDirectory hands the core the cluster's membership and turns the
// overlay policy on. From then on, on its ticks, the core:
//
//   - rejoins through a random member when it is Isolated, or Stranded
//     for two ticks in a row, no more often than every RejoinTicks (a node
//     that never joined does too: once the directory lists members, it
//     belongs to a cluster);
//   - every MixTicks, calls Mix on a random member with probability
//     2/Members (so the cluster makes about two such links per interval,
//     whatever its size), and always when Island() and the cluster is much
//     larger than an island; and when the directory suddenly grows by more
//     than an island's worth (two sides' member lists merged after a
//     partition), with probability 2·ActiveSize/Members;
//   - once per shuffle period, calls Mix when its passive view stays
//     poorer than one shuffle fills it, two shuffle periods after the node
//     started, in a cluster much larger than an island: the quick sign of
//     an island (see passivePoor), which Island() confirms only after many
//     shuffles;
//   - drops from its passive view the peers the directory reports Gone;
//   - every ReconnectTicks, asks the driver (Ready.Reconnect) to join a
//     random failed member through the failure detector, as Serf's
//     reconnect does: with probability Failed/Members, and less often the
//     longer the member has been failed (probability
//     ReconnectTicks/ticksAgo), never after ReconnectTimeoutTicks. That is
//     what joins two sides' member lists again after a partition longer
//     than the failure detector's own memory of the dead.
func (h *Protocol) SetDirectory(d Directory) {
	h.dir = d
	h.policy.mixPhase = uint64(h.rng.Intn(h.cfg.mixTicks()))
	h.policy.reconnectPhase = uint64(h.rng.Intn(h.cfg.reconnectTicks()))
	h.policy.gonePhase = uint64(h.rng.Intn(goneCheckTicks))
	h.policy.members = d.Members()
}

// policyState is what the overlay policy remembers between ticks.
type policyState struct {
	mixPhase, reconnectPhase, gonePhase uint64
	lastRejoin                          uint64 // tick of the last rejoin
	stranded                            bool   // Stranded, with a link, at the previous tick
	lastPoorMix                         uint64 // tick of the last Mix for a poor passive view
	members                             int    // Members() at the previous tick
}

// runPolicy is the overlay policy's part of Tick.
func (h *Protocol) runPolicy() {
	d := h.dir
	members := d.Members()
	grown := members - h.policy.members
	h.policy.members = members
	stranded := h.Stranded()
	// A node with a link may yet get the offers of its join's walks, a few
	// hops away: it rejoins only if it is still stranded a tick later. An
	// isolated node has nothing to wait for.
	wasStranded := h.policy.stranded
	h.policy.stranded = stranded && len(h.active) > 0
	if stranded && (len(h.active) == 0 || wasStranded) && (h.policy.lastRejoin == 0 || h.now-h.policy.lastRejoin >= uint64(h.cfg.rejoinTicks())) {
		if contact, ok := h.randomMember(); ok {
			h.policy.lastRejoin = h.now
			h.ready.Rejoins++
			h.Join(contact)
		}
	}
	island := h.cfg.ActiveSize * 4
	switch {
	case h.cfg.MixTicks >= 0 && h.now%uint64(h.cfg.mixTicks()) == h.policy.mixPhase:
		if (h.Island() && members > island) || h.rng.Float64()*float64(members) < mixesPerInterval {
			h.mixRandom()
		}
	case h.cfg.MixTicks >= 0 && grown > island:
		if h.rng.Float64()*float64(members) < float64(2*h.cfg.ActiveSize) {
			h.mixRandom()
		}
	}
	if h.cfg.MixTicks >= 0 && members > island && h.passivePoor() &&
		(h.policy.lastPoorMix == 0 || h.now-h.policy.lastPoorMix >= uint64(h.cfg.ShuffleTicks)) {
		h.policy.lastPoorMix = h.now
		h.mixRandom()
	}
	if h.now%goneCheckTicks == h.policy.gonePhase {
		for i := 0; i < len(h.passive); {
			if d.Gone(h.passive[i].Name) {
				h.removePassive(h.passive[i].Name)
				continue
			}
			i++
		}
	}
	if h.now%uint64(h.cfg.reconnectTicks()) == h.policy.reconnectPhase {
		h.reconnect()
	}
}

// passivePoor reports that, two shuffle periods after the node started,
// its passive view holds fewer peers than one shuffle brings
// (KActive+KPassive+1, or half the view if that is smaller). In a
// connected overlay every shuffle the node sends or ends brings that many
// peers it does not hold (at 1,000 nodes, 20 s after the last join, no
// node holds fewer than 10). In an island every member is in every other's
// active view, so shuffles bring nothing new, and the outsiders its nodes
// knew leave as they refuse or fail.
func (h *Protocol) passivePoor() bool {
	want := min(h.cfg.KActive+h.cfg.KPassive+1, h.cfg.PassiveSize/2)
	return want > 0 && len(h.passive) < want && h.now >= uint64(2*h.cfg.ShuffleTicks)
}

func (h *Protocol) mixRandom() {
	if contact, ok := h.randomMember(); ok {
		h.ready.Mixes++
		h.Mix(contact)
	}
}

// randomMember draws a member other than self and the active peers, which
// neither a rejoin nor a mix can use (a few tries: in a cluster of any
// size they are few among many).
func (h *Protocol) randomMember() (Peer, bool) {
	n := h.dir.Members()
	for range 4 {
		if n == 0 {
			return Peer{}, false
		}
		if p := h.dir.Member(h.rng.Intn(n)); p.Name != h.self.Name && p.Name != "" && h.activeIndex(p.Name) < 0 {
			return p, true
		}
	}
	return Peer{}, false
}

func (h *Protocol) reconnect() {
	failed, members := h.dir.Failed(), max(1, h.dir.Members())
	if failed == 0 || h.rng.Float64()*float64(members) >= float64(failed) {
		return
	}
	peer, ago := h.dir.FailedMember(h.rng.Intn(failed))
	period := h.cfg.reconnectTicks()
	if peer.Name == "" || peer.Name == h.self.Name || ago > h.cfg.reconnectTimeoutTicks() {
		return
	}
	if ago > period && h.rng.Intn(ago) >= period {
		return // backoff: the longer failed, the rarer the attempt
	}
	h.ready.Reconnect = append(h.ready.Reconnect, peer)
}
