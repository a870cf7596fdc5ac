package plumtree

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// holdingHandler holds every payload: it cannot use any yet.
type holdingHandler struct {
	recordingHandler
	pull []Action
}

func (h *holdingHandler) Merge(string, []byte, []byte) (Verdict, []Action) { return Held, h.pull }

// A payload the handler holds for later is neither forwarded nor
// announced (the nodes below would only inherit the same gap), the link it
// came over is kept, no delivery is counted, and the handler's actions (a
// pull of what it lacks) are carried out.
func TestHeldPayloadIsNotForwardedAndPrunesNothing(t *testing.T) {
	p, err := NewProtocol(Config{Self: "a"})
	require.NoError(t, err)
	h := &holdingHandler{recordingHandler: *newRecordingHandler("a")}
	require.NoError(t, p.Register("t", h))
	p.NeighborUp("b")
	p.NeighborUp("c")
	p.CancelExchanges("", "b")
	p.CancelExchanges("", "c")
	p.Ready()

	h.pull = []Action{{Kind: ActExchange, Peer: "b", Start: []byte("pull")}}
	require.NoError(t, p.Step("b", Message{Type: MsgGossip, Topic: "t", ID: []byte("m2"), Root: "b", Round: 1, Payload: []byte("x")}))
	p.Tick()
	require.Equal(t, []string{`b EXCHANGE t id=1 step=0 "pull"`}, sentTo(p.Ready().Messages))
	eager, _ := p.Peers("b")
	require.Contains(t, eager, "b", "the link the held payload came over stays eager")
	require.EqualValues(t, 1, p.Stats().Held)
	require.Zero(t, p.Stats().Delivered)
}
