package plumtree

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// tickingHandler is a handler whose Tick has work unless idle says not.
type tickingHandler struct {
	recordingHandler
	idle  bool
	ticks int
}

func (h *tickingHandler) Tick() []Action { h.ticks++; return nil }
func (h *tickingHandler) IdleTicks() int64 {
	if h.idle {
		return 1 << 40
	}
	return 0
}

// IdleTicks counts exactly the ticks that would do nothing: ticking
// through them changes nothing but the clock, and the next tick does the
// work (here the periodic exchange, then a recent delivery's expiry).
func TestIdleTicksEndAtTheNextTickWithWork(t *testing.T) {
	h := &digestHandler{}
	p, err := NewProtocol(Config{Self: "a", ExchangeTicks: 50, RecentTTLTicks: 1000})
	require.NoError(t, err)
	require.NoError(t, p.Register("t", h))
	p.NeighborUp("b")
	require.Zero(t, p.IdleTicks(), "the link's exchange is open")
	require.NoError(t, p.Step("b", Message{Type: MsgExchangeEnd, Topic: "t", Exchange: 1, Step: 1}))
	p.Ready()

	idle := p.IdleTicks()
	require.Positive(t, idle)
	started := h.started
	for range idle {
		p.Tick()
		require.False(t, p.HasReady(), "an idle tick emitted something")
	}
	require.Equal(t, started, h.started)
	p.Tick()
	require.Equal(t, started+1, h.started, "the tick after the idle ones opens the periodic exchange")
	require.Zero(t, p.IdleTicks())
}

// Pending work leaves no idle tick: a payload announced but not received
// (its graft timer runs), a ticking handler that is not idle, or one
// that cannot tell.
func TestIdleTicksIsZeroWithWorkPending(t *testing.T) {
	newIdle := func(h Handler) *Protocol {
		p, err := NewProtocol(Config{Self: "a"})
		require.NoError(t, err)
		require.NoError(t, p.Register("t", h))
		return p
	}
	p := newIdle(&recordingHandler{})
	p.NeighborUp("b")
	require.Positive(t, p.IdleTicks())
	require.NoError(t, p.Step("b", Message{Type: MsgIHave, IHaves: []Announcement{{Topic: "t", ID: []byte("m1"), Root: "b", Round: 1}}}))
	require.Zero(t, p.IdleTicks(), "b announced m1; a waits for it")

	busy := &tickingHandler{}
	require.Zero(t, newIdle(busy).IdleTicks())
	busy.idle = true
	require.Positive(t, newIdle(busy).IdleTicks())
	require.Zero(t, newIdle(&plainTicker{}).IdleTicks(), "a Ticker that cannot tell it is idle is taken as busy")
}

type plainTicker struct{ recordingHandler }

func (*plainTicker) Tick() []Action { return nil }
