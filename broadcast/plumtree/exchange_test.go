package plumtree

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// digestHandler is a small anti-entropy application: a set of ids whose
// exchange is digest, then what the peer lacks plus our digest, then what
// we lack.
type digestHandler struct {
	recordingHandler
	started, received int
	alwaysReply       bool
}

func (h *digestHandler) ExchangeStart(string) []byte { h.started++; return []byte("digest") }
func (h *digestHandler) ExchangeReceive(_ Exchange, data []byte) ([]byte, []Action) {
	h.received++
	if h.alwaysReply || string(data) == "digest" {
		return []byte("delta+digest"), nil
	}
	return nil, nil
}

// stepsHandler answers every exchange message below step replyBelow and
// ends the exchange at that step; it records what it was told.
type stepsHandler struct {
	recordingHandler
	replyBelow uint32
	seen       []Exchange
}

func (h *stepsHandler) ExchangeStart(string) []byte { return []byte("open") }
func (h *stepsHandler) ExchangeReceive(x Exchange, _ []byte) ([]byte, []Action) {
	h.seen = append(h.seen, x)
	if x.Step < h.replyBelow {
		return []byte("more"), nil
	}
	return nil, nil
}

// pair is two cores wired back to back.
type pair struct {
	t    *testing.T
	a, b *Protocol
	log  []string
}

func newPair(t *testing.T, cfg Config, ha, hb Handler) *pair {
	cfg.Self = "a"
	a, err := NewProtocol(cfg)
	require.NoError(t, err)
	cfg.Self = "b"
	b, err := NewProtocol(cfg)
	require.NoError(t, err)
	require.NoError(t, a.Register("t", ha))
	require.NoError(t, b.Register("t", hb))
	return &pair{t: t, a: a, b: b}
}

// pump delivers everything both sides send until they are quiet, logging
// each message, and returns how many went.
func (p *pair) pump() int {
	n := 0
	for p.a.HasReady() || p.b.HasReady() {
		for _, env := range p.a.Ready().Messages {
			n++
			p.log = append(p.log, "a->b "+env.Msg.String())
			require.NoError(p.t, p.b.Step("a", env.Msg))
		}
		for _, env := range p.b.Ready().Messages {
			n++
			p.log = append(p.log, "b->a "+env.Msg.String())
			require.NoError(p.t, p.a.Step("b", env.Msg))
		}
	}
	return n
}

// A new link gets one exchange, opened by the end with the lower name
// (whichever end hears of the link first), and both ends forget it as soon
// as it ends: the end that stops sends an EXCHANGE-END.
func TestOneExchangePerNewLinkFreedAtOnce(t *testing.T) {
	for _, bFirst := range []bool{false, true} {
		ha, hb := &digestHandler{}, &digestHandler{}
		p := newPair(t, Config{}, ha, hb)
		if bFirst {
			p.b.NeighborUp("a")
			p.a.NeighborUp("b")
		} else {
			p.a.NeighborUp("b")
			p.b.NeighborUp("a")
		}
		require.Equal(t, 3, p.pump(), "%v", p.log)
		require.Equal(t, []string{
			`a->b EXCHANGE t id=1 step=0 "digest"`,
			`b->a EXCHANGE t id=1 step=1 "delta+digest"`,
			`a->b EXCHANGE-END t id=1 step=2`,
		}, p.log)
		require.Equal(t, 1, ha.started)
		require.Zero(t, hb.started)
		require.Empty(t, p.a.Exchanges())
		require.Empty(t, p.b.Exchanges())
	}
}

// A reset link is compared at once by the end told of the reset, whatever
// its name: that end may have dropped what the peer sent over the old
// link, and the peer, which may have heard of nothing, would not open an
// exchange. Before NeighborReset, the higher-named end got a plain
// NeighborUp and the gap waited for the periodic exchange (a short
// partition took 2.8 s to heal). The lower-named end opens one exchange,
// not two; an end that never saw the link go down opens one too.
func TestTheEndToldOfAResetComparesStateWhateverItsName(t *testing.T) {
	ha, hb := &digestHandler{}, &digestHandler{}
	p := newPair(t, Config{}, ha, hb)
	p.a.NeighborUp("b")
	p.b.NeighborUp("a")
	p.pump()

	// resetAt tells end alone of a reset of its link to peer (after the
	// link's NeighborDown if down) and returns the messages that follow.
	resetAt := func(end *Protocol, peer string, down bool) []string {
		p.log = nil
		if down {
			end.NeighborDown(peer)
		}
		end.NeighborReset(peer)
		require.Equal(t, 3, p.pump(), "%v", p.log)
		return p.log
	}
	require.Equal(t, `b->a EXCHANGE t id=1 step=0 "digest"`, resetAt(p.b, "a", true)[0])
	require.Equal(t, 1, hb.started)
	require.Equal(t, `a->b EXCHANGE t id=2 step=0 "digest"`, resetAt(p.a, "b", true)[0])
	require.Equal(t, 2, ha.started)
	require.Equal(t, `b->a EXCHANGE t id=2 step=0 "digest"`, resetAt(p.b, "a", false)[0])
	require.Equal(t, []string{"a"}, p.b.Neighbors())
	require.Empty(t, p.a.Exchanges())
	require.Empty(t, p.b.Exchanges())
}

// An exchange the peer opened goes on when this end sees its link to the
// peer go down and up again: the peer that replaced a stalled link opens
// an exchange over the new one at once, and the old link's end can reach
// this end after the exchange's first step. Forgetting it then dropped the
// peer's next step, and the peer waited out ExchangeTimeoutTicks (a short
// partition took 5 to 6 s to heal instead of tens of milliseconds).
func TestPeersExchangeSurvivesALinkResetHere(t *testing.T) {
	ha, hb := &stepsHandler{replyBelow: 4}, &stepsHandler{replyBelow: 4}
	p := newPair(t, Config{}, ha, hb)
	p.a.NeighborUp("b")
	p.b.NeighborUp("a")
	require.NoError(t, p.b.Step("a", p.a.Ready().Messages[0].Msg)) // step 0
	require.NoError(t, p.a.Step("b", p.b.Ready().Messages[0].Msg)) // step 1
	p.b.NeighborDown("a")
	p.b.NeighborUp("a")
	p.pump()
	require.Equal(t, []string{
		`a->b EXCHANGE t id=1 step=2 "more"`,
		`b->a EXCHANGE t id=1 step=3 "more"`,
		`a->b EXCHANGE t id=1 step=4 "more"`,
		`b->a EXCHANGE-END t id=1 step=5`,
	}, p.log)
	require.Empty(t, p.a.Exchanges())
	require.Empty(t, p.b.Exchanges())
	require.Zero(t, p.b.Stats().ExchangesLate)
}

// When the responder ends the exchange, the initiator hears of it at once;
// the handler is told which exchange and step each message is.
func TestExchangeEndedByResponderFreesInitiator(t *testing.T) {
	ha, hb := &stepsHandler{replyBelow: 2}, &stepsHandler{replyBelow: 2}
	p := newPair(t, Config{}, ha, hb)
	p.a.NeighborUp("b")
	p.b.NeighborUp("a")
	require.Equal(t, 4, p.pump(), "%v", p.log)
	require.Equal(t, `b->a EXCHANGE-END t id=1 step=3`, p.log[3])
	require.Empty(t, p.a.Exchanges())
	require.Empty(t, p.b.Exchanges())
	require.Equal(t, []Exchange{{Peer: "a", Topic: "t", ID: 1, Steps: 1, Step: 0}, {Peer: "a", Topic: "t", ID: 1, Steps: 3, Step: 2}}, hb.seen)
	require.Equal(t, []Exchange{{Peer: "b", Topic: "t", ID: 1, Initiated: true, Steps: 2, Step: 1}}, ha.seen)
}

// An exchange the responder refuses (at MaxTrackedExchanges) is ended at
// once, so the initiator does not hold it until the timeout.
func TestRefusedExchangeFreesInitiator(t *testing.T) {
	ha, hb := &digestHandler{alwaysReply: true}, &digestHandler{alwaysReply: true}
	p := newPair(t, Config{MaxTrackedExchanges: 1}, ha, hb)
	p.b.NeighborUp("c") // b's one tracked exchange
	p.b.Ready()
	require.Len(t, p.b.Exchanges(), 1)
	p.a.NeighborUp("b")
	p.b.NeighborUp("a")
	require.Equal(t, 2, p.pump(), "%v", p.log)
	require.Equal(t, `b->a EXCHANGE-END t id=1 step=1`, p.log[1])
	require.Empty(t, p.a.Exchanges())
	require.EqualValues(t, 1, p.b.Stats().ExchangesRefused)
	require.Zero(t, hb.received)
}

// Cancelling an exchange tells the peer, which forgets it too.
func TestCancelExchangesFreesPeer(t *testing.T) {
	ha, hb := &digestHandler{alwaysReply: true}, &digestHandler{alwaysReply: true}
	p := newPair(t, Config{}, ha, hb)
	p.a.NeighborUp("b")
	p.b.NeighborUp("a")
	require.NoError(t, p.b.Step("a", p.a.Ready().Messages[0].Msg))
	p.b.Ready() // b's answer is lost
	require.Len(t, p.b.Exchanges(), 1)
	p.a.CancelExchanges("t", "b")
	require.Empty(t, p.a.Exchanges())
	require.Equal(t, 1, p.pump())
	require.Equal(t, `a->b EXCHANGE-END t id=1 step=2`, p.log[0])
	require.Empty(t, p.b.Exchanges())

	// The responder may cancel too.
	require.NoError(t, p.a.StartExchange("t", "b", nil))
	require.NoError(t, p.b.Step("a", p.a.Ready().Messages[0].Msg))
	p.b.Ready()
	p.b.CancelExchanges("", "a")
	p.log = nil
	require.Equal(t, 1, p.pump())
	require.Equal(t, `b->a EXCHANGE-END t id=2 step=3`, p.log[0])
	require.Empty(t, p.a.Exchanges())
	require.Empty(t, p.b.Exchanges())
}

func TestExchangeStepsAreBounded(t *testing.T) {
	ha, hb := &digestHandler{alwaysReply: true}, &digestHandler{alwaysReply: true}
	p := newPair(t, Config{MaxExchangeSteps: 5}, ha, hb)
	p.a.NeighborUp("b")
	p.b.NeighborUp("a")
	// Both ends know where the limit is: no end message is needed.
	require.Equal(t, 5, p.pump(), "%v", p.log)
	require.Empty(t, p.a.Exchanges())
	require.Empty(t, p.b.Exchanges())
}

func TestTrackedExchangesAreBounded(t *testing.T) {
	p, err := NewProtocol(Config{Self: "a", MaxTrackedExchanges: 2})
	require.NoError(t, err)
	h := &digestHandler{}
	require.NoError(t, p.Register("t", h))
	p.NeighborUp("b") // opens one
	p.Ready()
	for id := range uint64(3) {
		require.NoError(t, p.Step("b", Message{Type: MsgExchange, Topic: "t", Exchange: 100 + id, Payload: []byte("digest")}))
	}
	require.Len(t, p.Exchanges(), 2)
	require.EqualValues(t, 2, p.Stats().ExchangesRefused)
	require.Equal(t, 1, h.received, "refused exchanges never reach the handler")
	var ends int
	for _, env := range p.Ready().Messages {
		if env.Msg.Type == MsgExchangeEnd {
			ends++
		}
	}
	require.Equal(t, 2, ends, "each refusal is ended at once")
}

// Each node runs its periodic exchanges on its own randomised schedule,
// around ExchangeTicks, so a cluster does not exchange in lockstep.
func TestPeriodicExchangesAreJittered(t *testing.T) {
	const period = 10
	var firsts, gaps []int
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		p, err := NewProtocol(Config{Self: name, ExchangeTicks: period, ExchangeTimeoutTicks: 1})
		require.NoError(t, err)
		h := &digestHandler{}
		require.NoError(t, p.Register("t", h))
		p.NeighborUp("0") // the lower name opens the link's exchange, not this node
		last, started := -1, h.started
		for tick := 1; tick <= 40*period; tick++ {
			p.Tick()
			if h.started == started {
				continue
			}
			started = h.started
			if last < 0 {
				firsts = append(firsts, tick)
			} else {
				gaps = append(gaps, tick-last)
			}
			last = tick
		}
		p.Ready()
	}
	require.Len(t, firsts, 8)
	slices.Sort(firsts)
	require.Less(t, firsts[0], firsts[7], "nodes start apart: %v", firsts)
	require.LessOrEqual(t, firsts[7], period, "every node exchanges within the first period")
	slices.Sort(gaps)
	require.GreaterOrEqual(t, gaps[0], period/2, "%v", gaps)
	require.LessOrEqual(t, gaps[len(gaps)-1], period+period/2, "%v", gaps)
	require.Less(t, gaps[0], gaps[len(gaps)-1], "periods vary")
	sum := 0
	for _, g := range gaps {
		sum += g
	}
	mean := float64(sum) / float64(len(gaps))
	require.InDelta(t, period, mean, 1.5, "the mean period is ExchangeTicks")
}
