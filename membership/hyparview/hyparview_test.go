package hyparview

import (
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

func newTestCore(name string, cfg Config) *Protocol {
	return New(Peer{Name: name}, cfg, rand.New(rand.NewSource(1)))
}

func TestNewHyParViewRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no active view", func(c *Config) { c.ActiveSize = 0 }, "ActiveSize"},
		{"prwl over arwl", func(c *Config) { c.PRWL = c.ARWL + 1 }, "PRWL"},
		{"shuffle too big", func(c *Config) { c.KPassive = maxShufflePeers }, "shuffle carries"},
		{"no shuffle period", func(c *Config) { c.ShuffleTicks = 0 }, "ShuffleTicks"},
		{"no timeout", func(c *Config) { c.NeighborTimeoutTicks = 0 }, "NeighborTimeoutTicks"},
		{"high priority when full", func(c *Config) { c.HighPriorityBelow = c.ActiveSize + 1 }, "HighPriorityBelow"},
		{"negative high priority", func(c *Config) { c.HighPriorityBelow = -1 }, "HighPriorityBelow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error about %s", err, tc.want)
			}
			defer func() {
				if r := recover(); r == nil {
					t.Fatal("New accepted an invalid config")
				}
			}()
			newTestCore("a", cfg)
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig is invalid: %v", err)
	}
}

// TestSelfNeverInViews feeds a node messages that name it: it must neither
// link to itself nor keep itself as a contact.
func TestSelfNeverInViews(t *testing.T) {
	a := newTestCore("a", DefaultConfig())
	self := a.Self()
	a.Join(self)
	a.Step(self, MsgJoin{Epoch: 1})
	a.Step(Peer{Name: "b"}, MsgForwardJoin{Joiner: self, TTL: 0})
	a.Step(Peer{Name: "b"}, MsgForwardJoin{Joiner: self, TTL: uint32(a.cfg.PRWL)})
	a.Step(Peer{Name: "b"}, MsgShuffleReply{Peers: []Peer{self, {Name: "c"}}})
	a.Step(Peer{Name: "b"}, MsgShuffle{Origin: Peer{Name: "d"}, TTL: 1, Peers: []Peer{self, {Name: "e"}}})
	for _, p := range append(a.Active(), a.Passive()...) {
		if p.Name == "a" {
			t.Fatalf("self in views: %s", a)
		}
	}
	if got := a.Passive(); !reflect.DeepEqual(got, []Peer{{Name: "c"}, {Name: "d"}, {Name: "e"}}) {
		t.Fatalf("passive view %v, want c, d and e", got)
	}
	for _, env := range a.Ready().Messages {
		if env.To.Name == "a" {
			t.Fatalf("sent %v to self", env.Msg)
		}
	}
}

// TestAddressFollowsThePeer: a node that comes back on a new address is
// reached there, whichever view it is in, but hearsay in a shuffle does not
// overwrite an address heard from the peer itself.
func TestAddressFollowsThePeer(t *testing.T) {
	a := newTestCore("a", DefaultConfig())
	a.Step(Peer{Name: "b", Addr: "10.0.0.2:1"}, MsgJoin{Epoch: 1})
	a.Step(Peer{Name: "x"}, MsgShuffleReply{Peers: []Peer{{Name: "c", Addr: "10.0.0.3:1"}}})
	a.Ready()

	a.Step(Peer{Name: "b", Addr: "10.0.0.2:2"}, MsgNeighbor{Epoch: 2})
	a.Step(Peer{Name: "c", Addr: "10.0.0.3:2"}, MsgShuffleReply{})
	a.Step(Peer{Name: "x"}, MsgShuffleReply{Peers: []Peer{{Name: "b", Addr: "stale"}, {Name: "c", Addr: "stale"}}})
	if got := a.Active(); !reflect.DeepEqual(got, []Peer{{Name: "b", Addr: "10.0.0.2:2"}}) {
		t.Errorf("active view %v, want b at its new address", got)
	}
	if got := a.Passive(); !reflect.DeepEqual(got, []Peer{{Name: "c", Addr: "10.0.0.3:2"}}) {
		t.Errorf("passive view %v, want c at its new address", got)
	}
	rd := a.Ready()
	if len(rd.Messages) == 0 || rd.Messages[0].To.Addr != "10.0.0.2:2" {
		t.Errorf("reply not addressed to b's new address: %+v", rd.Messages)
	}
}

// TestHighPriorityEvictsOne: a full node that accepts a high-priority
// request drops exactly one peer, with DISCONNECT, into its passive view.
func TestHighPriorityEvictsOne(t *testing.T) {
	cfg := DefaultConfig()
	a := newTestCore("a", cfg)
	for _, name := range []string{"b", "c", "d", "e", "f"} {
		a.Step(Peer{Name: name}, MsgNeighbor{High: true, Epoch: 1})
	}
	a.Ready()
	a.Step(Peer{Name: "g"}, MsgNeighbor{High: true, Epoch: 9})
	rd := a.Ready()
	if len(rd.Down) != 1 || rd.Down[0].Reason != ReasonEvicted {
		t.Fatalf("Down = %+v, want one eviction", rd.Down)
	}
	evicted := rd.Down[0].Peer
	if !reflect.DeepEqual(rd.Up, []Peer{{Name: "g"}}) {
		t.Fatalf("Up = %v, want g", rd.Up)
	}
	var sawDisconnect, sawAccept bool
	for _, env := range rd.Messages {
		switch m := env.Msg.(type) {
		case MsgDisconnect:
			sawDisconnect = env.To == evicted && env.Transient
		case MsgNeighborReply:
			sawAccept = env.To.Name == "g" && m.Accept && m.Epoch == 9 && !env.Transient
		}
	}
	if !sawDisconnect || !sawAccept {
		t.Fatalf("messages %+v: want a transient DISCONNECT to %s and an accept to g over the link", rd.Messages, evicted)
	}
	if len(a.Active()) != cfg.ActiveSize || !reflect.DeepEqual(a.Passive(), []Peer{evicted}) {
		t.Fatalf("after the eviction: %s", a)
	}
	// A low-priority request to the full node is refused and changes nothing.
	before := a.String()
	a.Step(Peer{Name: "h"}, MsgNeighbor{High: false, Epoch: 10})
	rd = a.Ready()
	if len(rd.Up)+len(rd.Down) != 0 || a.String() != before {
		t.Fatalf("a low-priority request changed a full view: %s, %+v", a, rd)
	}
	if m, ok := rd.Messages[0].Msg.(MsgNeighborReply); !ok || m.Accept {
		t.Fatalf("reply %v, want a rejection", rd.Messages[0].Msg)
	}
}

// TestReadyReportsNetChanges: a peer that comes and goes within one batch
// is not reported; one that goes and comes back is reported down, then up.
func TestReadyReportsNetChanges(t *testing.T) {
	a := newTestCore("a", DefaultConfig())
	a.Step(Peer{Name: "b"}, MsgJoin{Epoch: 1})
	a.LinkFailed(Peer{Name: "b"})
	if rd := a.Ready(); len(rd.Up) != 0 || len(rd.Down) != 0 {
		t.Fatalf("up-then-down reported: %+v", rd)
	}
	a.Step(Peer{Name: "c"}, MsgJoin{Epoch: 1})
	a.Ready()
	a.LinkFailed(Peer{Name: "c"})
	a.Step(Peer{Name: "c", Addr: "new"}, MsgJoin{Epoch: 5})
	rd := a.Ready()
	if len(rd.Down) != 1 || rd.Down[0].Peer.Name != "c" || rd.Down[0].Reason != ReasonFailed || len(rd.Up) != 1 || rd.Up[0] != (Peer{Name: "c", Addr: "new"}) {
		t.Fatalf("down-then-up: %+v", rd)
	}
}

func TestIsolated(t *testing.T) {
	a := newTestCore("a", DefaultConfig())
	if !a.Isolated() {
		t.Fatal("a fresh node is not isolated")
	}
	a.Join(Peer{Name: "b"})
	if a.Isolated() {
		t.Fatal("isolated while its JOIN is outstanding")
	}
	for range a.cfg.NeighborTimeoutTicks {
		a.Tick()
	}
	if !a.Isolated() {
		t.Fatalf("not isolated after its JOIN timed out: %s, %+v", a, a.attempts)
	}
	a.Step(Peer{Name: "x"}, MsgShuffleReply{Peers: []Peer{{Name: "c"}}})
	if a.Isolated() {
		t.Fatal("isolated with a passive peer to try")
	}
	a.Tick() // asks c
	a.LinkFailed(Peer{Name: "c"})
	if !a.Isolated() {
		t.Fatalf("not isolated once its last candidate failed: %s", a)
	}
}

// TestDeterministic: the same seeds give the same run, message for
// message, which the simulator relies on.
func TestDeterministic(t *testing.T) {
	run := func() string {
		net := newTestNet(7, DefaultConfig())
		net.log = new(strings.Builder)
		for i := range 30 {
			h := net.add(string(rune('A' + i)))
			if i > 0 {
				h.Join(Peer{Name: net.live()[net.rng.Intn(i)]})
			}
			if err := net.tickSlow(0.5); err != nil {
				t.Fatal(err)
			}
		}
		for range 150 {
			if err := net.tickSlow(0.5); err != nil {
				t.Fatal(err)
			}
		}
		return net.log.String()
	}
	first, second := run(), run()
	if first != second {
		t.Fatal("two runs with the same seeds differ")
	}
	if strings.Count(first, "SHUFFLE_REPLY") == 0 {
		t.Fatal("the run never shuffled; it tests too little")
	}
}

// FuzzHyParViewInputs drives one core with an arbitrary sequence of inputs,
// as a confused or hostile peer could send them, and checks that it never
// panics and that its views keep their invariants: within bounds, never
// self, never a peer twice, and a Ready that matches the active view.
func FuzzHyParViewInputs(f *testing.F) {
	f.Add([]byte{0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{4, 1, 1, 4, 2, 1, 4, 3, 1, 4, 4, 1, 4, 5, 1, 4, 6, 1, 3, 2, 9, 8, 8, 8})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 3*1000 {
			ops = ops[:3*1000] // a thousand inputs per run keep each execution fast
		}
		runInputs(t, ops)
	})
}

// runInputs applies ops, three bytes per input (kind, peer, argument), to
// one core and checks its invariants after each.
func runInputs(t testing.TB, ops []byte) {
	cfg := DefaultConfig()
	cfg.ActiveSize, cfg.PassiveSize, cfg.ShuffleTicks = 3, 4, 3
	h := newTestCore("n0", cfg)
	links := make(map[string]bool)
	peer := func(b byte) Peer { return Peer{Name: fmt.Sprintf("n%d", b%8)} }
	for len(ops) >= 3 {
		op, p, arg := ops[0], peer(ops[1]), ops[2]
		ops = ops[3:]
		epoch := uint64(arg % 16)
		switch op % 11 {
		case 0:
			h.Join(p)
		case 1:
			h.Step(p, MsgJoin{Epoch: epoch})
		case 2:
			h.Step(p, MsgForwardJoin{Joiner: peer(arg), TTL: uint32(arg % 8)})
		case 3:
			h.Step(p, MsgDisconnect{Epoch: epoch})
		case 4:
			h.Step(p, MsgNeighbor{High: arg&1 == 1, Epoch: epoch})
		case 5:
			h.Step(p, MsgNeighborReply{Accept: arg&1 == 1, Epoch: epoch, Link: epoch + uint64(arg>>4)})
		case 6:
			h.Step(p, MsgShuffle{Origin: peer(arg), TTL: uint32(arg % 4), Peers: []Peer{peer(arg + 1), peer(arg + 2), p}})
		case 7:
			h.Step(p, MsgShuffleReply{Peers: []Peer{peer(arg), peer(arg + 3), peer(arg + 5)}})
		case 8:
			h.Tick()
		case 9:
			h.LinkFailed(p)
		case 10:
			h.Mix(p)
		}
		if err := checkViews(h); err != nil {
			t.Fatal(err)
		}
		rd := h.Ready()
		for _, d := range rd.Down {
			if !links[d.Peer.Name] {
				t.Fatalf("Down %s, which was not up", d.Peer.Name)
			}
			delete(links, d.Peer.Name)
		}
		for _, u := range rd.Up {
			if links[u.Name] {
				t.Fatalf("Up %s, which was already up", u.Name)
			}
			links[u.Name] = true
		}
		active := h.Active()
		if len(active) != len(links) {
			t.Fatalf("Ready reported %v, active view %v", keys(links), active)
		}
		for _, a := range active {
			if !links[a.Name] {
				t.Fatalf("Ready reported %v, active view %v", keys(links), active)
			}
		}
		for _, env := range rd.Messages {
			if env.To.Name == "n0" {
				t.Fatalf("sent %v to self", env.Msg)
			}
		}
	}
}

// FORWARD_JOIN walks ending at one node (a join burst, or a peer sending
// them on purpose) open at most ActiveSize link offers at a time.
func TestForwardJoinOffersAreBounded(t *testing.T) {
	cfg := DefaultConfig()
	h := newTestCore("a", cfg)
	for i := range 200 {
		h.Step(Peer{Name: "b"}, MsgForwardJoin{Joiner: Peer{Name: fmt.Sprintf("j%03d", i)}, TTL: 0})
	}
	if got := len(h.attempts); got > cfg.ActiveSize {
		t.Fatalf("%d link offers outstanding after 200 walks, want at most %d", got, cfg.ActiveSize)
	}
	if sent := len(h.Ready().Messages); sent > cfg.ActiveSize {
		t.Fatalf("%d NEIGHBOR offers sent, want at most %d", sent, cfg.ActiveSize)
	}
	if len(h.Passive()) == 0 {
		t.Fatal("joiners past the offer bound should be kept as passive contacts")
	}
}
