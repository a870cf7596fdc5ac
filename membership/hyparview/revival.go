package hyparview

import "fmt"

// Revival is the policy that brings a stalled active link back quickly once
// the network does. It is not part of HyParView's views: the peer stays
// active throughout; what changes is the connection under the link.
//
// Why a link needs it: frames sent while the network is cut wait in the
// transport's retransmission queue (TCP's), whose timer backs off (200,
// 400, 800 ms...). When the network comes back, nothing is re-sent before
// the timer fires again, hundreds of milliseconds later, and a cut shorter
// than the keepalive timeout never drops the link either. A new connection
// is not held back that way: its first packet goes through as soon as the
// path does. So while a link is suspect the driver opens a probe connection
// to the peer every ProbeTicks, one at a time, and when one succeeds
// replaces the stalled connection by it; the consumer is told the link went
// down and up, so that it compares state with the peer at once (the
// registry's anti-entropy) instead of waiting on frames that may be lost.
//
// A link is suspect once its transport has reported a stall at StallTicks
// checks in a row (data the peer has not acknowledged past a
// retransmission timeout: the path, not the peer's process, is at fault,
// since a live kernel acknowledges what a slow process has not read yet;
// and in a row, because on a live but lossy path the retransmission of a
// lost segment is acknowledged within a round trip), or when no frame at
// all came from the peer for SilentTicks (a fallback for transports that
// report no stall). A merely slow peer is neither: it is never probed. A suspect link is
// probed at most once per ProbeTicks, with at most one probe in flight, so
// a peer that stays unreachable costs a bounded trickle of connection
// attempts until the keepalive timeout drops the link.
//
// Time is counted in the revival's own ticks: the driver's check period,
// shorter than the core's tick, since the point is to act within tens of
// milliseconds. Like the core, a Revival is a pure state machine; the
// driver and the simulator call it.
type Revival struct {
	cfg   RevivalConfig
	now   uint64
	peers map[string]*revivalState
}

// RevivalConfig tunes a Revival, in its ticks.
type RevivalConfig struct {
	// ProbeTicks is the least spacing of two probes to one peer (and of a
	// probe after the one that failed): the delay between the network's
	// return and the link's.
	ProbeTicks int
	// StallTicks is how many checks in a row must see the transport
	// stalled before the link is suspect; 0 means 1.
	StallTicks int
	// SilentTicks makes a link suspect when no frame came from its peer for
	// that many ticks, whatever the transport says; 0 turns that off. It
	// should exceed a keepalive period plus a round trip, the longest a
	// healthy link stays quiet.
	SilentTicks int
}

// Validate reports a configuration a Revival cannot run.
func (c RevivalConfig) Validate() error {
	if c.ProbeTicks < 1 || c.SilentTicks < 0 || c.StallTicks < 0 {
		return fmt.Errorf("hyparview: revival config %+v: want ProbeTicks >= 1, StallTicks and SilentTicks >= 0", c)
	}
	return nil
}

// LinkHealth is what the driver observes of one active link at a tick.
type LinkHealth struct {
	// Stalled: the transport holds data the peer has not acknowledged
	// past a retransmission timeout.
	Stalled bool
	// SilentTicks is how many ticks ago the last frame came from the peer.
	SilentTicks int
}

type revivalState struct {
	stalls    int // checks in a row that saw the transport stalled
	suspect   bool
	probing   bool   // a probe is in flight
	lastProbe uint64 // tick the last probe started; valid once probes > 0
	probes    int    // probes started during this suspicion
}

// NewRevival returns a Revival with nothing observed; it panics on a
// config that Validate refuses.
func NewRevival(cfg RevivalConfig) *Revival {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Revival{cfg: cfg, peers: make(map[string]*revivalState)}
}

// Tick advances the revival's clock by one check period.
func (r *Revival) Tick() { r.now++ }

// Observe records the health of the active link to peer and reports
// whether the driver should start a probe connection to it now.
func (r *Revival) Observe(peer string, h LinkHealth) bool {
	s := r.peers[peer]
	if s == nil {
		if !h.Stalled && !r.silent(h) {
			return false
		}
		s = &revivalState{}
		r.peers[peer] = s
	}
	if h.Stalled {
		s.stalls++
	} else {
		s.stalls = 0
	}
	suspect := s.stalls >= max(r.cfg.StallTicks, 1) || r.silent(h)
	if !suspect {
		if s.suspect {
			s.suspect = false // a probe in flight will not replace the link
		}
		if s.stalls == 0 && !s.probing {
			delete(r.peers, peer)
		}
		return false
	}
	if !s.suspect {
		s.suspect = true
		s.probes = 0
	}
	if s.probing || (s.probes > 0 && r.now-s.lastProbe < uint64(r.cfg.ProbeTicks)) {
		return false
	}
	s.probing = true
	s.probes++
	s.lastProbe = r.now
	return true
}

func (r *Revival) silent(h LinkHealth) bool {
	return r.cfg.SilentTicks > 0 && h.SilentTicks >= r.cfg.SilentTicks
}

// ProbeFailed ends the probe in flight to peer; the next may start
// ProbeTicks after it began.
func (r *Revival) ProbeFailed(peer string) {
	s := r.peers[peer]
	if s == nil {
		return
	}
	s.probing = false
	if !s.suspect && s.stalls == 0 {
		delete(r.peers, peer)
	}
}

// ProbeSucceeded ends the probe in flight to peer and reports whether its
// connection should replace the link: only while the link is still
// suspect. A link that recovered by itself meanwhile is kept, and the
// probe's connection closed.
func (r *Revival) ProbeSucceeded(peer string) bool {
	s := r.peers[peer]
	if s == nil || !s.probing {
		return false
	}
	replace := s.suspect
	delete(r.peers, peer)
	return replace
}

// Replaced records that the link to peer was replaced by a connection no
// probe of ours made (the peer's own probe, say), or ended. A probe still
// in flight is left to finish; its success will not replace the new link.
func (r *Revival) Replaced(peer string) {
	s := r.peers[peer]
	if s == nil {
		return
	}
	if s.probing {
		s.suspect, s.stalls = false, 0
	} else {
		delete(r.peers, peer)
	}
}

// Suspect reports whether the link to peer is suspect.
func (r *Revival) Suspect(peer string) bool {
	s := r.peers[peer]
	return s != nil && s.suspect
}

// Probing reports whether a probe to peer is in flight.
func (r *Revival) Probing(peer string) bool {
	s := r.peers[peer]
	return s != nil && s.probing
}
