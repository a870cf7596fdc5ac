package membership

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

func newTestCore(name string, cfg Config) *HyParView {
	return NewHyParView(Peer{Name: name}, cfg, rand.New(rand.NewSource(1)))
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
					t.Fatal("NewHyParView accepted an invalid config")
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
