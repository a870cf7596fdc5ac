package hyparview

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios replays the paper's protocol steps, one file per path under
// testdata/hyparview, on a few named nodes with explicit message delivery.
// Each command prints the messages sent and the links that went up or down;
// "views" prints the views, so the expected output documents the protocol.
//
// Commands:
//
//	config active=N passive=N arwl=N prwl=N kactive=N kpassive=N timeout=N backoff=N highbelow=N
//	       mix=N rejoin=N
//	add NAME...                  nodes with the current config (shuffle only on demand)
//	link A B                     a confirmed link, as if A's NEIGHBOR had been accepted
//	passive A NAME...            put peers in A's passive view
//	join A contact=B             A sends JOIN to B
//	mix A contact=B              A calls Mix(B): a high-priority NEIGHBOR
//	deliver [from=A] [to=B] [type=T] [n=N|all]
//	                             deliver the oldest matching message(s) in flight
//	drop [from=A] [to=B] [type=T] lose the oldest matching message
//	tick A... [n=N]              advance the nodes' clocks
//	shuffle A                    A starts a shuffle now
//	fail A peer=B                A's driver reports the link to B lost
//	transient-failed A peer=B    A's driver reports a short-lived send to B failed
//	step A from=B shuffle origin=C ttl=N
//	step A from=B forwardjoin joiner=C ttl=N
//	                             A receives a message as if from the wire
//	kill A                       A dies; its linked peers see the link fail
//	inflight                     list the messages in flight
//	views [A...]                 print views (all nodes if none named)
//	check                        check bounds and symmetry
//	directory [A...]             hand the nodes (all if none named) a directory
//	                             listing the live nodes: the overlay policy runs
//	                             on their ticks
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/hyparview", func(t *testing.T, path string) {
		s := &scenario{cfg: scenarioConfig()}
		s.net = newTestNet(1, s.cfg)
		s.net.log = new(strings.Builder)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return s.run(t, d)
		})
	})
}

// scenarioConfig is small enough that a few nodes fill their views.
func scenarioConfig() Config {
	return Config{
		ActiveSize:           3,
		PassiveSize:          4,
		ARWL:                 3,
		PRWL:                 2,
		KActive:              1,
		KPassive:             2,
		HighPriorityBelow:    2,
		ShuffleTicks:         1000,
		NeighborTimeoutTicks: 3,
		BackoffTicks:         5,
	}
}

type scenario struct {
	cfg Config
	net *testNet
}

func (s *scenario) run(t *testing.T, d *datadriven.TestData) string {
	n := s.net
	n.log.Reset()
	switch d.Cmd {
	case "config":
		for _, arg := range d.CmdArgs {
			var v int
			arg.Scan(t, 0, &v)
			field, ok := map[string]*int{
				"active": &s.cfg.ActiveSize, "passive": &s.cfg.PassiveSize,
				"arwl": &s.cfg.ARWL, "prwl": &s.cfg.PRWL,
				"kactive": &s.cfg.KActive, "kpassive": &s.cfg.KPassive,
				"timeout": &s.cfg.NeighborTimeoutTicks, "backoff": &s.cfg.BackoffTicks,
				"highbelow": &s.cfg.HighPriorityBelow,
				"mix":       &s.cfg.MixTicks, "rejoin": &s.cfg.RejoinTicks,
			}[arg.Key]
			if !ok {
				d.Fatalf(t, "unknown config key %q", arg.Key)
			}
			*field = v
		}
		if err := s.cfg.Validate(); err != nil {
			return err.Error()
		}
		n.cfg = s.cfg
		return "ok"
	case "add":
		for _, arg := range d.CmdArgs {
			h := n.add(arg.Key)
			h.nextShuffle = math.MaxUint64
		}
		return s.viewsOf(argNames(d))
	case "link":
		names := argNames(d)
		a, b := s.node(t, d, names[0]), s.node(t, d, names[1])
		epoch := a.nextEpoch()
		b.observeEpoch(epoch)
		a.addActive(b.self, epoch)
		b.addActive(a.self, epoch)
		s.collect(t)
		return fmt.Sprintf("%s <-> %s epoch=%d", a.self.Name, b.self.Name, epoch)
	case "passive":
		names := argNames(d)
		h := s.node(t, d, names[0])
		for _, name := range names[1:] {
			h.addPassive(Peer{Name: name})
		}
		return s.viewsOf(names[:1])
	case "join":
		var contact string
		d.ScanArgs(t, "contact", &contact)
		s.node(t, d, argNames(d)[0]).Join(Peer{Name: contact})
		s.collect(t)
	case "mix":
		var contact string
		d.ScanArgs(t, "contact", &contact)
		s.node(t, d, argNames(d)[0]).Mix(Peer{Name: contact})
		s.collect(t)
	case "deliver", "drop":
		count := 1
		if d.HasArg("all") {
			count = math.MaxInt
		}
		d.MaybeScanArgs(t, "n", &count)
		for i := 0; i < count; i++ {
			idx := s.match(t, d)
			if idx < 0 {
				if i == 0 && !d.HasArg("all") {
					d.Fatalf(t, "no message in flight matches")
				}
				break
			}
			if d.Cmd == "drop" {
				n.logf("drop %s", n.inflight[idx])
				n.inflight = append(n.inflight[:idx], n.inflight[idx+1:]...)
				continue
			}
			if err := n.deliver(idx); err != nil {
				d.Fatalf(t, "%v", err)
			}
		}
	case "tick":
		count := 1
		d.MaybeScanArgs(t, "n", &count)
		for range count {
			for _, name := range argNames(d) {
				s.node(t, d, name).Tick()
			}
			s.collect(t)
		}
	case "shuffle":
		s.node(t, d, argNames(d)[0]).shuffle()
		s.collect(t)
	case "fail":
		var peer string
		d.ScanArgs(t, "peer", &peer)
		s.node(t, d, argNames(d)[0]).LinkFailed(Peer{Name: peer})
		s.collect(t)
	case "step":
		s.step(t, d)
	case "transient-failed":
		var peer string
		d.ScanArgs(t, "peer", &peer)
		s.node(t, d, argNames(d)[0]).TransientFailed(Peer{Name: peer})
		s.collect(t)
	case "kill":
		for _, name := range argNames(d) {
			s.node(t, d, name)
			n.logf("%s dies", name)
			if err := n.kill(name); err != nil {
				d.Fatalf(t, "%v", err)
			}
		}
	case "inflight":
		for _, p := range n.inflight {
			n.logf("%s", p)
		}
	case "views":
		return s.viewsOf(argNames(d))
	case "directory":
		names := argNames(d)
		if len(names) == 0 {
			names = n.live()
		}
		for _, name := range names {
			s.node(t, d, name).SetDirectory(liveDirectory{n})
		}
		return "ok"
	case "check":
		if len(n.inflight) > 0 {
			d.Fatalf(t, "check with %d messages in flight", len(n.inflight))
		}
		if err := n.check(); err != nil {
			return err.Error()
		}
		return "ok: views within bounds and symmetric"
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	out := n.log.String()
	if out == "" {
		return "(nothing)"
	}
	return out
}

func (s *scenario) collect(t *testing.T) {
	if err := s.net.collect(); err != nil {
		t.Fatal(err)
	}
}

func (s *scenario) node(t *testing.T, d *datadriven.TestData, name string) *Protocol {
	h, ok := s.net.nodes[name]
	if !ok {
		d.Fatalf(t, "no node %q", name)
	}
	return h
}

// match finds the oldest in-flight message that fits the from, to and type
// arguments.
func (s *scenario) match(t *testing.T, d *datadriven.TestData) int {
	var from, to, typ string
	d.MaybeScanArgs(t, "from", &from)
	d.MaybeScanArgs(t, "to", &to)
	d.MaybeScanArgs(t, "type", &typ)
	for i, p := range s.net.inflight {
		name, _, _ := strings.Cut(p.msg.String(), " ")
		if (from == "" || p.from.Name == from) && (to == "" || p.to.Name == to) && (typ == "" || name == typ) {
			return i
		}
	}
	return -1
}

func (s *scenario) viewsOf(names []string) string {
	if len(names) == 0 {
		names = s.net.names
	}
	var b strings.Builder
	for _, name := range names {
		h := s.net.nodes[name]
		if h == nil {
			continue
		}
		state := ""
		if s.net.dead[name] {
			state = " (dead)"
		}
		fmt.Fprintf(&b, "%s%s: active=%s passive=%s\n", name, state, peerList(h.Active()), peerList(h.Passive()))
	}
	return b.String()
}

// argNames returns the arguments given without a value: node names.
func argNames(d *datadriven.TestData) []string {
	var names []string
	for _, arg := range d.CmdArgs {
		if len(arg.Vals) == 0 && arg.Key != "all" {
			names = append(names, arg.Key)
		}
	}
	return names
}

// step hands a node a message built from the command's arguments, as a
// peer (honest or not) could send it.
func (s *scenario) step(t *testing.T, d *datadriven.TestData) {
	names := argNames(d)
	if len(names) != 2 {
		d.Fatalf(t, "step A from=B KIND ...: want a node and a message kind")
	}
	var from string
	var ttl int
	d.ScanArgs(t, "from", &from)
	d.ScanArgs(t, "ttl", &ttl)
	var m ProtocolMessage
	switch names[1] {
	case "shuffle":
		var origin string
		d.ScanArgs(t, "origin", &origin)
		m = MsgShuffle{Origin: Peer{Name: origin}, TTL: uint32(ttl), Peers: []Peer{{Name: origin}}}
	case "forwardjoin":
		var joiner string
		d.ScanArgs(t, "joiner", &joiner)
		m = MsgForwardJoin{Joiner: Peer{Name: joiner}, TTL: uint32(ttl)}
	default:
		d.Fatalf(t, "step: unknown message kind %q", names[1])
	}
	s.net.logf("deliver %s -> %s: %s", from, names[0], m)
	s.node(t, d, names[0]).Step(Peer{Name: from}, m)
	s.collect(t)
}
