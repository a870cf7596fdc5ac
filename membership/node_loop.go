package membership

import (
	"sync/atomic"
	"time"

	"github.com/cpggo/cpg/internal/wire"
	"github.com/cpggo/cpg/membership/hyparview"
)

// run is the node's loop: the only goroutine that touches the core. It
// feeds the core what the links, timers and memberlist bring and carries
// out what the core asks for after every input. The overlay policy
// (mixing, rejoining, reconnecting) is the core's: the loop only refreshes
// the core's view of memberlist before each tick and runs the memberlist
// joins the core asks for.
func (n *Node) run(core *hyparview.Protocol) {
	tick := time.NewTicker(n.cfg.TickInterval)
	defer tick.Stop()
	keepAlive := time.NewTicker(n.cfg.KeepAlive)
	defer keepAlive.Stop()
	revive := time.NewTicker(revivalTick)
	defer revive.Stop()
	dir := newMemberDirectory(n.cfg.TickInterval)
	n.gossip.refresh(dir, time.Now(), n.cfg.Gossip.ReconnectTimeout)
	core.SetDirectory(dir)
	var reconnecting atomic.Bool
	missed := missedMembers{unknownSince: make(map[string]time.Time)}
	for {
		// settled is the link whose frame this iteration takes: the link
		// events that frame causes are queued by execute, and only then
		// may the link's reader queue its payloads without the loop.
		var settled *link
		select {
		case <-n.done:
			return
		case in := <-n.inputs:
			n.apply(core, in)
			if in.link != nil && (in.kind == inputMessage || in.kind == inputPayload) {
				settled = in.link
			}
		case <-tick.C:
			n.gossip.refresh(dir, time.Now(), n.cfg.Gossip.ReconnectTimeout)
			core.Tick()
			if addr := missed.check(core.Active(), n.table, n.self.Name, time.Now()); addr != "" {
				n.reconnect(addr, &reconnecting)
			}
		case <-keepAlive.C:
			n.keepAlive(core)
		case <-revive.C:
			n.reviveCheck(core)
		}
		rd := core.Ready()
		for _, p := range rd.Reconnect {
			n.reconnect(p.Addr, &reconnecting)
		}
		n.execute(core, rd)
		if settled != nil {
			settled.inLoop.Add(-1)
		}
	}
}

// reconnect runs memberlist's join to a failed member's address, one at a
// time: it blocks for up to memberlist's TCP timeout, so not on the loop.
func (n *Node) reconnect(addr string, busy *atomic.Bool) {
	if addr == "" || !busy.CompareAndSwap(false, true) {
		return
	}
	n.spawn(func() {
		defer busy.Store(false)
		if err := n.gossip.join([]string{addr}); err != nil {
			n.log.Debug("membership: reconnect to a failed member", "addr", addr, "err", err)
		}
	})
}

// missedMembers finds overlay neighbours that memberlist does not list at
// all: gossip missed their join announcement, and memberlist would repair
// that only at its next full-state exchange (every 30 s with the LAN
// timings), while the registry counts time against owners its failure
// detector does not list. A full-state exchange with a member it does list
// repairs the gap at once; memberlist's join to a known member is one.
type missedMembers struct {
	unknownSince map[string]time.Time
	lastSync     time.Time
	turn         int // which listed member to ask next: one that missed the announcement too must not be asked forever
}

// missedGrace is how long a neighbour may be unknown to memberlist before
// a full-state exchange is asked for: a newcomer's overlay link often
// comes a moment before the gossip announcing it.
const missedGrace = time.Second

// check returns the gossip address of a member to exchange full state
// with, or "" when no neighbour has been missing for missedGrace (or one
// such exchange was asked for within the last missedGrace).
func (m *missedMembers) check(active []Peer, table *statusTable, self string, now time.Time) string {
	missing := false
	for _, p := range active {
		if _, known := table.get(p.Name); known {
			delete(m.unknownSince, p.Name)
			continue
		}
		since, ok := m.unknownSince[p.Name]
		if !ok {
			m.unknownSince[p.Name] = now
			continue
		}
		missing = missing || now.Sub(since) >= missedGrace
	}
	for name := range m.unknownSince {
		if !containsPeer(active, name) {
			delete(m.unknownSince, name)
		}
	}
	if !missing || now.Sub(m.lastSync) < missedGrace {
		return ""
	}
	var listed []string
	for _, info := range table.list() {
		if info.Name != self && info.Status == StatusAlive && info.GossipAddr != "" {
			listed = append(listed, info.GossipAddr)
		}
	}
	if len(listed) == 0 {
		return ""
	}
	m.lastSync = now
	m.turn++
	return listed[m.turn%len(listed)]
}

// coreConfig is the HyParView configuration with the overlay policy's
// periods converted from the node's durations into ticks.
func (c NodeConfig) coreConfig() hyparview.Config {
	hc := c.HyParView
	ticks := func(d time.Duration) int { return max(1, int(d/c.TickInterval)) }
	if hc.MixTicks == 0 {
		hc.MixTicks = -1
		if c.MixInterval > 0 {
			hc.MixTicks = ticks(c.MixInterval)
		}
	}
	if hc.ReconnectTicks == 0 {
		hc.ReconnectTicks = ticks(c.Gossip.ReconnectInterval)
	}
	if hc.ReconnectTimeoutTicks == 0 {
		hc.ReconnectTimeoutTicks = ticks(c.Gossip.ReconnectTimeout)
	}
	return hc
}

func (n *Node) apply(core *hyparview.Protocol, in coreInput) {
	switch in.kind {
	case inputMessage:
		core.Step(in.peer, in.msg)
	case inputPayload:
		n.mu.Lock()
		active := containsPeer(n.active, in.peer.Name)
		n.mu.Unlock()
		if active && !in.link.superseded.Load() {
			n.events.pushPayload(Event{Type: Message, Peer: in.peer, Payload: in.payload}, in.link.flow)
		} else {
			// The link went down (or was replaced) before this payload
			// was read: the consumer has had LinkDown. Its credit still goes back, in
			// case the link carries on as a secondary one.
			in.link.flow.release(payloadCost(len(in.payload) + 1))
		}
	case inputJoin:
		core.Join(in.peer)
	case inputTransientFailed:
		core.TransientFailed(in.peer)
	case inputProbe:
		n.probeDone(core, in)
	case inputLinkReplaced:
		n.linkReset(core, in.peer, "the peer replaced the link")
	case inputLinkFailed:
		if in.link != nil {
			primary, replaced := n.unlinkPrimary(in.link)
			if replaced {
				// Another link to the peer took over, but what the failed
				// one held may be lost.
				n.linkReset(core, in.peer, "link failed, another took over")
				return
			}
			// A secondary link, or one that closes after its peer left the
			// active view (it sent DISCONNECT first), is no failure: the
			// core must not forget the peer, which stays a spare contact.
			wasActive := containsPeer(core.Active(), in.peer.Name)
			if !primary || (in.link.established.Load() != 0 && !wasActive) {
				return
			}
			if wasActive {
				n.table.suspect(in.peer.Name)
				if closedByPeer(in.err) {
					n.confirmGone(in.peer)
				}
			}
		}
		core.LinkFailed(in.peer)
	}
}

// execute carries out a hyparview.Ready: per the core's contract, Down is applied
// before Up, then Messages are sent in order. A message to a peer that just
// left the active view (its DISCONNECT) goes over the old link before that
// link closes, so that it arrives before the connection's end.
func (n *Node) execute(core *hyparview.Protocol, rd hyparview.Ready) {
	active := core.Active()
	leaving := make(map[string]*link)
	n.mu.Lock()
	for _, d := range rd.Down {
		if containsPeer(active, d.Peer.Name) {
			continue // left and came back within the batch: keep the link
		}
		if l := n.links[d.Peer.Name]; l != nil {
			delete(n.links, d.Peer.Name)
			leaving[d.Peer.Name] = l
		}
	}
	n.active = active
	n.passive = core.Passive()
	n.mu.Unlock()

	for _, d := range rd.Down {
		n.events.pushLink(Event{Type: LinkDown, Peer: d.Peer, Reason: d.Reason})
	}
	for _, p := range rd.Up {
		if l := n.openLink(p); l != nil {
			l.inactiveSince = 0
		}
		n.events.pushLink(Event{Type: LinkUp, Peer: p})
		n.table.clearSuspicion(p.Name, 0)
	}
	for _, env := range rd.Messages {
		typ, body := hyparview.EncodeMessage(env.Msg)
		frame := wire.AppendFrame(nil, typ, body)
		if old := leaving[env.To.Name]; old != nil && old.established.Load() != 0 {
			if old.enqueueControl(frame) {
				continue
			}
		}
		if env.Transient {
			if !n.sendTransient(env.To, frame) {
				// Too many transient sends in flight: this one fails now,
				// as it would against an unreachable peer, and what the
				// core does about it goes out with the next batch.
				n.log.Debug("membership: transient send refused, too many in flight", "peer", env.To.Name)
				core.TransientFailed(env.To)
			}
			continue
		}
		l := n.openLink(env.To)
		if l == nil {
			return // closing
		}
		if !l.enqueueControl(frame) {
			n.dropLink(core, l, "control queue full")
		}
	}
	for _, l := range leaving {
		l.retire()
	}
}

// dropLink gives up a primary link the node itself judged dead (keepalive
// timeout, queue stuck full) and tells the core.
func (n *Node) dropLink(core *hyparview.Protocol, l *link, why string) {
	l.failed.Store(true)
	l.abort()
	n.forget(l)
	primary, replaced := n.unlinkPrimary(l)
	if replaced {
		n.linkReset(core, l.peer, why+", another link took over")
	}
	if primary && !replaced {
		n.log.Debug("membership: dropping link", "peer", l.peer.Name, "why", why)
		if containsPeer(core.Active(), l.peer.Name) {
			n.table.suspect(l.peer.Name)
		}
		core.LinkFailed(l.peer)
	}
}

// keepAlive runs every KeepAlive period: it pings every established link,
// drops those silent for longer than their timeout or whose socket took no
// data for as long, and closes primary links that have been outside the
// core's active view for a while (the peer's view changed; the link is
// idle).
func (n *Node) keepAlive(core *hyparview.Protocol) {
	now := n.now()
	if n.lastSweep != 0 && now-n.lastSweep > 2*n.cfg.KeepAlive {
		// This sweep is late: the whole process was paused (overloaded
		// host, GC, a stopped VM), so our readers were too, and the
		// silence of our links is ours, not our peers'. Measure silence
		// from now on.
		n.log.Debug("membership: keepalive sweep late, restarting silence clocks", "late", now-n.lastSweep-n.cfg.KeepAlive)
		n.resumedAt = now
	}
	n.lastSweep = now
	active := core.Active()
	n.mu.Lock()
	type entry struct {
		l       *link
		primary bool
	}
	all := make([]entry, 0, len(n.conns))
	for l := range n.conns {
		all = append(all, entry{l, n.links[l.peer.Name] == l})
	}
	n.mu.Unlock()
	idleGrace := time.Duration(n.cfg.HyParView.NeighborTimeoutTicks)*n.cfg.TickInterval + keepAliveMisses*n.cfg.KeepAlive
	for _, e := range all {
		l := e.l
		if l.established.Load() == 0 || l.stopped() {
			continue
		}
		timeout := linkTimeout(n.cfg.KeepAlive, l.rto())
		silent := now - max(time.Duration(l.lastRecv.Load()), n.resumedAt)
		writing := l.writingSince.Load()
		switch {
		case silent > timeout:
			n.log.Debug("membership: silent link", "peer", l.peer.Name, "silent", silent, "timeout", timeout, "primary", e.primary)
			n.dropLink(core, l, "keepalive timeout")
			continue
		case writing != 0 && now-time.Duration(writing) > timeout:
			// The socket took nothing for that long: the peer's reader
			// stopped (its process hung) or the network did. A queue full
			// for want of credit is no such sign: that peer is alive and
			// its application behind, and its Send callers are told.
			n.dropLink(core, l, "socket write stalled")
			continue
		}
		if e.primary && !containsPeer(active, l.peer.Name) {
			if l.inactiveSince == 0 {
				l.inactiveSince = now
			} else if now-l.inactiveSince > idleGrace {
				n.mu.Lock()
				if n.links[l.peer.Name] == l {
					delete(n.links, l.peer.Name)
				}
				n.mu.Unlock()
				l.retire()
				continue
			}
		} else {
			l.inactiveSince = 0
		}
		l.enqueueControl(l.nextPing(now))
	}
}

// unlinkPrimary removes a failed link from the primaries. If another live
// link to the same peer exists (the peer dialed again, or the loser of a
// simultaneous open), it becomes the primary and the failure is not the
// core's concern: the peer is still linked.
func (n *Node) unlinkPrimary(l *link) (primary, replaced bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.links[l.peer.Name] != l {
		return false, false
	}
	delete(n.links, l.peer.Name)
	for other := range n.conns {
		if other != l && other.peer.Name == l.peer.Name && other.established.Load() != 0 && !other.stopped() {
			n.links[l.peer.Name] = other
			return true, true
		}
	}
	return true, false
}
