package hyparview

import (
	"fmt"
	"math/rand"
	"testing"
)

// fakeDirectory is a Directory the test fills by hand.
type fakeDirectory struct {
	members []Peer
	failed  []fakeFailed
	gone    map[string]bool
}

type fakeFailed struct {
	peer Peer
	ago  int
}

func (d *fakeDirectory) Members() int      { return len(d.members) }
func (d *fakeDirectory) Member(i int) Peer { return d.members[i] }
func (d *fakeDirectory) Failed() int       { return len(d.failed) }
func (d *fakeDirectory) FailedMember(i int) (Peer, int) {
	return d.failed[i].peer, d.failed[i].ago
}
func (d *fakeDirectory) Gone(name string) bool { return d.gone[name] }

func membersNamed(prefix string, n int) []Peer {
	out := make([]Peer, n)
	for i := range out {
		out[i] = Peer{Name: fmt.Sprintf("%s%04d", prefix, i)}
	}
	return out
}

// policyCore returns a core for self with the policy on over d, its
// periodic shuffle out of the way.
func policyCore(self string, cfg Config, d Directory, seed int64) *Protocol {
	h := New(Peer{Name: self}, cfg, rand.New(rand.NewSource(seed)))
	h.nextShuffle = 1 << 62
	h.SetDirectory(d)
	return h
}

// settle gives h the views of a node of a settled overlay: a full active
// view and a passive view as rich as shuffles keep it, so that nothing but
// the policy under test acts.
func settle(h *Protocol) {
	for i := range h.cfg.ActiveSize {
		h.addActive(Peer{Name: fmt.Sprintf("active%d", i)}, 1)
	}
	for i := range h.cfg.PassiveSize / 2 {
		h.addPassive(Peer{Name: fmt.Sprintf("passive%d", i)})
	}
	h.Ready()
}

// Each node mixes with probability 2/Members once per MixTicks, at its own
// phase: the cluster as a whole makes about two Mix calls per interval,
// spread over it rather than all at one tick.
func TestPolicyMixesTwicePerIntervalAcrossTheCluster(t *testing.T) {
	const nodes, intervals = 400, 50
	cfg := DefaultConfig()
	cfg.MixTicks = 20
	d := &fakeDirectory{members: membersNamed("n", nodes)}
	cores := make([]*Protocol, nodes)
	for i := range cores {
		cores[i] = policyCore(d.members[i].Name, cfg, d, int64(i+1))
		settle(cores[i])
	}
	mixes, ticksWithMix := 0, map[int]bool{}
	for tick := range intervals * cfg.MixTicks {
		for _, h := range cores {
			h.Tick()
			if m := h.Ready().Mixes; m > 0 {
				mixes += m
				ticksWithMix[tick%cfg.MixTicks] = true
			}
		}
	}
	perInterval := float64(mixes) / intervals
	t.Logf("%d mixes in %d intervals (%.2f per interval), at %d distinct phases", mixes, intervals, perInterval, len(ticksWithMix))
	if perInterval < 1.4 || perInterval > 2.6 {
		t.Errorf("%.2f mixes per interval across %d nodes, want about %d", perInterval, nodes, mixesPerInterval)
	}
	if len(ticksWithMix) < cfg.MixTicks/2 {
		t.Errorf("mixes fell on %d of %d phases: nodes mix in lockstep", len(ticksWithMix), cfg.MixTicks)
	}
}

// A node that suspects an island mixes at every interval, whatever the
// cluster's size, as long as the cluster is much larger than an island.
func TestPolicyIslandMixes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MixTicks = 20
	for _, members := range []int{1000, 4 * cfg.ActiveSize} {
		d := &fakeDirectory{members: membersNamed("n", members)}
		h := policyCore("self", cfg, d, 3)
		settle(h)
		// Shuffles from three origins only, enough of them to tell. They
		// end here (ttl 0) and leave the passive view as rich as it was.
		for i := range cfg.islandVisits() {
			h.Step(Peer{Name: "active0"}, MsgShuffle{Origin: Peer{Name: fmt.Sprintf("o%d", i%3)}, TTL: 0})
		}
		if !h.Island() {
			t.Fatalf("three shuffle origins among %d visits do not make an island", cfg.islandVisits())
		}
		h.Ready()
		mixes := 0
		for range 10 * cfg.MixTicks {
			h.Tick()
			mixes += h.Ready().Mixes
		}
		large := members > 4*cfg.ActiveSize
		switch {
		case large && mixes != 10:
			t.Errorf("an island node of a %d-member cluster mixed %d times in 10 intervals, want once per interval", members, mixes)
		case !large && mixes > 5:
			t.Errorf("a node of a %d-member cluster (an island's size) mixed %d times in 10 intervals: the check should not count there", members, mixes)
		}
	}
}

// An isolated node rejoins through a random member at once, then no more
// often than every RejoinTicks while it stays isolated; a rejoin whose
// contact proves unreachable is retried on the next tick.
func TestPolicyIsolatedNodeRejoinsWithAGap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RejoinTicks, cfg.NeighborTimeoutTicks, cfg.MixTicks = 10, 3, -1
	d := &fakeDirectory{members: membersNamed("n", 50)}
	h := policyCore("self", cfg, d, 5)
	var at []int
	var contacts []Peer
	for tick := 1; tick <= 31; tick++ {
		h.Tick()
		rd := h.Ready()
		if rd.Rejoins > 0 {
			at = append(at, tick)
			for _, m := range rd.Messages {
				if _, ok := m.Msg.(MsgJoin); ok {
					contacts = append(contacts, m.To)
				}
			}
		}
	}
	if fmt.Sprint(at) != "[1 11 21 31]" {
		t.Errorf("rejoins at ticks %v, want 1, 11, 21, 31 (a JOIN times out after 3 ticks, rejoins are 10 apart)", at)
	}
	if len(contacts) != len(at) {
		t.Fatalf("%d rejoins sent %d JOINs", len(at), len(contacts))
	}
	// The JOIN of tick 31 is still outstanding when its contact proves
	// unreachable.
	h.TransientFailed(contacts[len(contacts)-1])
	h.Tick()
	if rd := h.Ready(); rd.Rejoins != 1 {
		t.Errorf("an unreachable rejoin contact was not replaced on the next tick: %d rejoins", rd.Rejoins)
	}
}

// A failed member is retried through the driver (Ready.Reconnect) with
// probability Failed/Members per ReconnectTicks, ReconnectTicks/ticksAgo as
// often once it has been failed longer than a period, and never after
// ReconnectTimeoutTicks.
func TestPolicyReconnectProbabilities(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MixTicks, cfg.ReconnectTicks, cfg.ReconnectTimeoutTicks = -1, 5, 1000
	const periods = 4000
	for _, c := range []struct {
		ago  int
		want float64 // reconnects per period
	}{
		{ago: 0, want: 0.1},
		{ago: 4 * 5, want: 0.1 / 4},
		{ago: 1001, want: 0},
	} {
		d := &fakeDirectory{members: membersNamed("n", 100)}
		for i := range 10 {
			d.failed = append(d.failed, fakeFailed{peer: Peer{Name: fmt.Sprintf("f%d", i), Addr: "gossip:1"}, ago: c.ago})
		}
		h := policyCore("n0000", cfg, d, 9)
		h.addActive(Peer{Name: "n0001"}, 1)
		h.Ready()
		got := 0
		for range periods * cfg.ReconnectTicks {
			h.Tick()
			for _, p := range h.Ready().Reconnect {
				if p.Addr != "gossip:1" || p.Name[0] != 'f' {
					t.Fatalf("reconnect to %v, which is no failed member with its address", p)
				}
				got++
			}
		}
		rate := float64(got) / periods
		t.Logf("failed %d ticks ago: %.4f reconnects per period, want %.4f", c.ago, rate, c.want)
		if rate < c.want*0.8 || rate > c.want*1.2 {
			t.Errorf("failed %d ticks ago: %.4f reconnects per period, want %.4f", c.ago, rate, c.want)
		}
	}
}

// Peers the directory reports Gone (dead or left) leave the passive view
// within goneCheckTicks; the others stay.
func TestPolicyGonePeersLeaveThePassiveView(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MixTicks = -1
	d := &fakeDirectory{members: membersNamed("n", 10), gone: map[string]bool{"b": true, "d": true}}
	h := policyCore("self", cfg, d, 2)
	h.addActive(Peer{Name: "linked"}, 1)
	for _, name := range []string{"a", "b", "c", "d"} {
		h.addPassive(Peer{Name: name})
	}
	// Keep the node from asking them: it is one short, and they refused.
	for _, name := range []string{"a", "b", "c", "d"} {
		h.refused[name] = 1 << 40
	}
	for range goneCheckTicks {
		h.Tick()
	}
	if got := peerList(h.Passive()); got != "[a c]" {
		t.Errorf("passive view %s after %d ticks, want [a c]", got, goneCheckTicks)
	}
}

// A node whose passive view stays poorer than one shuffle fills it mixes
// once per shuffle period, from two periods after it started, and only in
// a cluster much larger than an island.
func TestPolicyPoorPassiveViewMixes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MixTicks = 1 << 20 // the random mixing out of the way
	for _, members := range []int{1000, 4 * cfg.ActiveSize} {
		d := &fakeDirectory{members: membersNamed("n", members)}
		h := policyCore("self", cfg, d, 4)
		for i := range cfg.ActiveSize {
			h.addActive(Peer{Name: fmt.Sprintf("active%d", i)}, 1)
		}
		h.Ready()
		var at []int
		for tick := 1; tick <= 5*cfg.ShuffleTicks; tick++ {
			h.Tick()
			if h.Ready().Mixes > 0 {
				at = append(at, tick)
			}
		}
		want := "[200 300 400 500]"
		if members <= 4*cfg.ActiveSize {
			want = "[]"
		}
		if fmt.Sprint(at) != want {
			t.Errorf("%d members: mixes at ticks %v, want %s", members, at, want)
		}
	}
}
