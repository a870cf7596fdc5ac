package membership

import (
	"time"

	"github.com/cpggo/cpg/membership/hyparview"
)

// revivalTick is the period of the revival check (hyparview.Revival): how
// often the loop looks at its links' transports, and the spacing of probe
// connections to a stalled link's peer. The point is to use a link again
// within tens of milliseconds of the network's return.
const revivalTick = 25 * time.Millisecond

// revivalConfig is the revival policy of the driver: a probe per check at
// most, once TCP has reported a stall at two checks in a row. On a live
// path a lost segment's retransmission is acknowledged within a round trip,
// far less than a check period on a LAN, so a stall seen twice is a path
// that is down (or losing its retransmissions too). Silence alone does not
// make a link suspect here: a live peer on an overloaded host can stay
// quiet for a while, and the keepalive timeout covers a silent peer.
func revivalConfig() hyparview.RevivalConfig {
	return hyparview.RevivalConfig{ProbeTicks: 1, StallTicks: 2}
}

// probeConnectTimeout bounds a probe's TCP connect: a connect that has not
// completed by then lost its SYN to the cut, and the next probe sends a
// fresh one (a SYN the kernel retransmits waits a second first). Four
// round trips leave a slow network its time; on a LAN the connect gives up
// a little before the next check, so that the next probe starts at it.
func probeConnectTimeout(srtt time.Duration) time.Duration {
	return max(revivalTick*4/5, 4*srtt)
}

// resetWait bounds how long a replaced link waits for the peer to answer
// on its successor before it is reset anyway.
const resetWait = 250 * time.Millisecond

// pendingReset is a link replaced by a probe's connection, to be reset
// once the peer answered on the new one or resetWait passed.
type pendingReset struct {
	old, fresh *link
	deadline   time.Duration
}

// reviveCheck runs every revivalTick: it resets the links replaced whose
// peer answered on their successor, tells the revival policy how each
// active link's transport is doing, and starts the probes it asks for.
func (n *Node) reviveCheck(core *hyparview.Protocol) {
	n.revival.Tick()
	now := n.now()
	waiting := n.pendingResets[:0]
	for _, p := range n.pendingResets {
		answered := p.fresh.lastRecv.Load() > p.fresh.established.Load()
		if answered || now > p.deadline || p.fresh.stopped() {
			p.old.abortReset()
			n.forget(p.old)
			continue
		}
		waiting = append(waiting, p)
	}
	clear(n.pendingResets[len(waiting):])
	n.pendingResets = waiting
	active := core.Active()
	n.mu.Lock()
	links := make([]*link, 0, len(active))
	for _, p := range active {
		if l := n.links[p.Name]; l != nil {
			links = append(links, l)
		}
	}
	n.mu.Unlock()
	seen := make(map[string]struct{}, len(links))
	for _, l := range links {
		if l.established.Load() == 0 || l.stopped() {
			continue
		}
		seen[l.peer.Name] = struct{}{}
		silent := now - max(time.Duration(l.lastRecv.Load()), n.resumedAt)
		health := hyparview.LinkHealth{Stalled: l.stalled(), SilentTicks: int(silent / revivalTick)}
		if n.revival.Observe(l.peer.Name, health) {
			n.probe(l)
		}
	}
	for name := range n.revivalWatched {
		if _, ok := seen[name]; !ok {
			n.revival.Replaced(name)
		}
	}
	n.revivalWatched = seen
}

// probe opens a fresh connection to a stalled link's peer, off the loop,
// and hands the outcome to the loop (inputProbe).
func (n *Node) probe(l *link) {
	srtt, _ := l.smoothedRTT()
	timeout := probeConnectTimeout(srtt)
	ok := n.spawn(func() {
		in := coreInput{kind: inputProbe, peer: l.peer, link: l}
		conn, err := n.dialAddr(l.peer.Addr, timeout)
		if err == nil && !n.trackConn(conn) {
			err = ErrClosed
		}
		if err == nil {
			in.res, err = n.hs.dial(conn, l.peer.Name, false)
			if err != nil {
				n.untrackConn(conn)
				conn.Close()
			} else {
				in.conn = conn
			}
		}
		in.err = err
		if !n.input(in) && in.conn != nil {
			n.untrackConn(in.conn)
			in.conn.Close()
		}
	})
	if !ok {
		n.revival.ProbeFailed(l.peer.Name)
	}
}

// probeDone takes a probe's outcome on the loop. A probe that connected
// while its link is still the peer's primary and still stalled replaces
// the link: the probe's connection becomes the primary, the stalled one is
// reset, and the consumer sees the link go down and up again, since what
// the old connection held may never arrive (the registry compares digests
// with the peer on a link's coming up, which fills the gap).
//
// Otherwise (the link recovered, or the peer's own probe replaced it
// first) the probe's connection is settled as adopt settles two links
// dialed at once, since the peer adopted it by those rules: the link
// dialed by the lower name wins on both sides.
func (n *Node) probeDone(core *hyparview.Protocol, in coreInput) {
	old := in.link
	name := old.peer.Name
	if in.err != nil {
		n.log.Debug("membership: probe of a stalled link", "peer", name, "err", in.err)
		n.revival.ProbeFailed(name)
		return
	}
	revive := n.revival.ProbeSucceeded(name) && containsPeer(core.Active(), name)
	fresh := newLink(old.peer, n.self.Name, n.hs.announcedWindow())
	old.mu.Lock()
	fresh.rtt = old.rtt // same peer, same path: keep the estimate
	old.mu.Unlock()
	attached := fresh.attach(in.conn, in.res, n.now())
	n.untrackConn(in.conn)
	winner := min(n.self.Name, name)
	n.mu.Lock()
	cur := n.links[name]
	live := cur != nil && !cur.stopped()
	switch {
	case !attached || n.closed:
		n.mu.Unlock()
		fresh.abort()
		return
	case revive && cur == old && live:
		n.links[name] = fresh
	case live && cur.initiator == winner && n.self.Name != winner:
		// The peer keeps this connection as a secondary link and expects
		// its dialer, us, to close it.
		n.mu.Unlock()
		fresh.abort()
		return
	default:
		revive = false
		n.links[name] = fresh
		if live && cur.initiator == n.self.Name {
			cur.retire()
		}
		n.log.Debug("membership: a probe's connection settled as a second dial", "peer", name)
	}
	n.conns[fresh] = struct{}{}
	n.mu.Unlock()
	if revive {
		// The old link is reset once the peer answers on the new one (a
		// pong to this ping), which proves the peer adopted it: reset
		// sooner, the old link may end at the peer before the new one
		// begins there, and the peer would take that for a failure.
		old.superseded.Store(true)
		old.failed.Store(true)
		fresh.enqueueControl(fresh.nextPing(n.now()))
		n.pendingResets = append(n.pendingResets, pendingReset{old: old, fresh: fresh, deadline: n.now() + resetWait})
		n.log.Debug("membership: stalled link replaced by a probe's connection", "peer", name)
	}
	if !n.spawn(func() { n.readLoop(fresh, in.conn) }) || !n.spawn(func() { n.writeLoop(fresh, in.conn) }) {
		fresh.abort()
		n.forget(fresh)
		return
	}
	if revive {
		n.linkReset(core, old.peer, "link stalled, replaced by a new connection")
	}
}

// linkReset tells the consumer that the link to an active peer was
// replaced by another connection that may not carry what the old one
// still held: a LinkDown and a LinkUp marked Reset, so that it compares
// state with the peer: the peer may have heard of nothing (its end of the
// old link recovered, and it moved to a new connection without a reset),
// so this end must not wait for the peer to ask.
func (n *Node) linkReset(core *hyparview.Protocol, peer Peer, why string) {
	n.revival.Replaced(peer.Name)
	if !containsPeer(core.Active(), peer.Name) {
		return
	}
	n.log.Debug("membership: link reset", "peer", peer.Name, "why", why)
	n.events.pushLink(Event{Type: LinkDown, Peer: peer, Reason: why})
	n.events.pushLink(Event{Type: LinkUp, Peer: peer, Reset: true})
}
