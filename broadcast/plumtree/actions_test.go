package plumtree

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// exchangingHandler opens every exchange with "digest" and answers every
// message with the actions it is given.
type exchangingHandler struct {
	recordingHandler
	replyActions []Action
	seen         []Exchange
}

func (h *exchangingHandler) ExchangeStart(string) []byte { return []byte("digest") }
func (h *exchangingHandler) ExchangeReceive(x Exchange, _ []byte) ([]byte, []Action) {
	h.seen = append(h.seen, x)
	return nil, h.replyActions
}

func sentTo(msgs []Envelope) []string {
	var out []string
	for _, env := range msgs {
		out = append(out, env.To+" "+env.Msg.String())
	}
	return out
}

// Actions a handler returns from Merge are carried out once it returns, in
// order, after the payload itself was pushed on.
func TestMergeActionsAreCarriedOut(t *testing.T) {
	p, err := NewProtocol(Config{Self: "a"})
	require.NoError(t, err)
	h := &exchangingHandler{recordingHandler: *newRecordingHandler("a")}
	require.NoError(t, p.Register("t", h))
	p.NeighborUp("b")
	p.NeighborUp("c")
	p.Ready()
	p.CancelExchanges("", "b")
	p.CancelExchanges("", "c")
	require.Empty(t, p.Exchanges())
	p.Ready()

	h.actions = func(from string, id []byte) []Action {
		return []Action{
			{Kind: ActBroadcast, Root: "r", ID: []byte("s1"), Payload: []byte("state")},
			{Kind: ActExchange, Peer: from},
			{Kind: ActExchange, Peer: "stranger"},
		}
	}
	require.NoError(t, p.Step("b", Message{Type: MsgGossip, Topic: "t", ID: []byte("m1"), Root: "b", Round: 1, Payload: []byte("x")}))
	require.Equal(t, []string{
		"c GOSSIP t/m1 root=b round=2",
		"b GOSSIP t/s1 root=r round=0",
		"c GOSSIP t/s1 root=r round=0",
		`b EXCHANGE t id=3 step=0 "digest"`,
	}, sentTo(p.Ready().Messages))
	require.EqualValues(t, 1, p.Stats().ActionsFailed, "no exchange with a non-neighbour")
	require.Len(t, p.Exchanges(), 1)
}

// Actions returned by ExchangeReceive are carried out too, and the handler
// is told which exchange each message belongs to.
func TestExchangeActionsAreCarriedOut(t *testing.T) {
	p, err := NewProtocol(Config{Self: "a"})
	require.NoError(t, err)
	h := &exchangingHandler{recordingHandler: *newRecordingHandler("a")}
	require.NoError(t, p.Register("t", h))
	p.NeighborUp("b")
	p.Ready()
	p.CancelExchanges("t", "b")
	p.Ready()
	h.replyActions = []Action{{Kind: ActExchange, Peer: "b", Start: []byte("chosen")}}
	require.NoError(t, p.Step("b", Message{Type: MsgExchange, Topic: "t", Exchange: 7, Step: 0, Payload: []byte("digest")}))
	require.Equal(t, []Exchange{{Peer: "b", Topic: "t", ID: 7, Steps: 1, Step: 0}}, h.seen)
	require.Equal(t, []string{
		"b EXCHANGE-END t id=7 step=1", // the handler ended b's exchange
		`b EXCHANGE t id=2 step=0 "chosen"`,
	}, sentTo(p.Ready().Messages))
}

func TestStartExchangeAndCancel(t *testing.T) {
	p, err := NewProtocol(Config{Self: "a", MaxTrackedExchanges: 2})
	require.NoError(t, err)
	h := &exchangingHandler{recordingHandler: *newRecordingHandler("a")}
	require.NoError(t, p.Register("t", h))
	require.NoError(t, p.Register("u", h))
	require.ErrorIs(t, p.StartExchange("t", "b", nil), ErrNotNeighbor)
	require.ErrorIs(t, p.StartExchange("nope", "b", nil), ErrNoHandler)
	p.NeighborUp("b") // opens one exchange per topic: the limit is reached
	p.Ready()
	require.ErrorIs(t, p.StartExchange("t", "b", nil), ErrExchangeLimit)

	p.CancelExchanges("t", "b")
	require.Len(t, p.Exchanges(), 1)
	require.Equal(t, "u", p.Exchanges()[0].Topic)
	require.NoError(t, p.StartExchange("t", "b", []byte("mine")))
	require.Equal(t, []string{
		"b EXCHANGE-END t id=1 step=2", // the cancel, told to b
		`b EXCHANGE t id=3 step=0 "mine"`,
	}, sentTo(p.Ready().Messages))
	p.CancelExchanges("", "b")
	require.Empty(t, p.Exchanges())
}

// A message relayed on another root's tree carries RoundUnknown all the way
// and its duplicates prune nothing: they say nothing of the root's tree.
func TestBroadcastOnAnotherRootKeepsTheTree(t *testing.T) {
	c := newCluster(t, Config{})
	for _, n := range []string{"r", "a", "b"} {
		c.add(n)
	}
	c.link("r", "a")
	c.link("a", "b")
	c.link("r", "b")
	c.dropExchanges()
	c.handlers["a"].have["s1"] = []byte("state")
	require.NoError(t, c.nodes["a"].BroadcastOn("t", "r", []byte("s1"), []byte("state")))
	c.collect("a", 0)
	c.deliverFIFO(nil, nil, nil)
	require.Equal(t, 1, c.handlers["r"].delivered["s1"])
	require.Equal(t, 1, c.handlers["b"].delivered["s1"])
	require.Equal(t, RoundUnknown, c.handlers["b"].rounds["s1"])
	require.Positive(t, c.nodes["b"].Stats().Duplicates+c.nodes["r"].Stats().Duplicates)
	require.Zero(t, c.nodes["r"].Stats().Sent[MsgPrune]+c.nodes["b"].Stats().Sent[MsgPrune]+c.nodes["a"].Stats().Sent[MsgPrune])
	for _, n := range []string{"r", "a", "b"} {
		_, lazy := c.nodes[n].BroadcastMembers("r")
		require.Empty(t, lazy, n)
	}
	require.Error(t, c.nodes["a"].BroadcastOn("t", "", []byte("s2"), nil))
}
