package plumtree

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func newCore(t *testing.T, cfg Config, topics ...string) (*Protocol, *recordingHandler) {
	t.Helper()
	p, err := NewProtocol(cfg)
	require.NoError(t, err)
	h := newRecordingHandler(cfg.Self)
	for _, topic := range append([]string{"t"}, topics...) {
		require.NoError(t, p.Register(topic, h))
	}
	return p, h
}

func ihaves(n int) Message {
	m := Message{Type: MsgIHave}
	for i := range n {
		m.IHaves = append(m.IHaves, Announcement{Topic: "t", ID: fmt.Appendf(nil, "m%d", i), Root: "r", Round: 2})
	}
	return m
}

func TestMissingIsBoundedInSizeAndTime(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a", MaxMissing: 4, MissingTTLTicks: 20})
	p.NeighborUp("b")
	p.Ready()
	require.NoError(t, p.Step("b", ihaves(10)))
	require.Len(t, p.missing, 4)
	require.EqualValues(t, 6, p.Stats().MissingDropped)

	// The one announcer is grafted at the timeout and again, with the
	// wait doubling (ticks 3, 5, 9 and 17), since a graft or its answer
	// can be lost; the entries age out at the TTL.
	for range 19 {
		p.Tick()
	}
	require.Len(t, p.missing, 4)
	require.EqualValues(t, 16, p.Stats().GraftsSent)
	p.Tick()
	require.Empty(t, p.missing)
	require.EqualValues(t, 4, p.Stats().MissingExpired)
}

func TestAnnouncersAreBoundedAndGraftedInTurn(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a", MaxAnnouncers: 2, GraftTimeoutTicks: 3, GraftRetryTicks: 1})
	for _, peer := range []string{"b", "c", "d"} {
		p.NeighborUp(peer)
		require.NoError(t, p.Step(peer, ihaves(1)))
	}
	p.Ready()
	var grafted []string
	for range 6 {
		p.Tick()
		for _, env := range p.Ready().Messages {
			if env.Msg.Type == MsgGraft {
				grafted = append(grafted, env.To)
			}
		}
	}
	// First graft at the timeout, the next one a retry later, and, the
	// payload still missing (a graft or its answer can be lost), b again
	// after twice the retry; d was past MaxAnnouncers and is never asked.
	require.Equal(t, []string{"b", "c", "b"}, grafted)
	eager, _ := p.Peers("r")
	require.Equal(t, []string{"b", "c", "d"}, eager)
}

func TestLazyQueueIsBounded(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a", LazyQueueLimit: 3, LazyFlushTicks: 1})
	p.NeighborUp("b")
	p.NeighborUp("c")
	require.NoError(t, p.Step("c", Message{Type: MsgPrune, Root: "a"}))
	for i := range 5 {
		require.NoError(t, p.Broadcast("t", fmt.Appendf(nil, "m%d", i), []byte("x")))
	}
	p.Ready()
	require.EqualValues(t, 2, p.Stats().LazyDropped)
	p.Tick()
	msgs := p.Ready().Messages
	require.Len(t, msgs, 1)
	require.Equal(t, "c", msgs[0].To)
	require.Len(t, msgs[0].Msg.IHaves, 3)
	require.Empty(t, p.lazyQueues)
}

// Paced payloads, one every tick, share their announcements: with the
// default flush period a lazy peer gets one IHAVE per 50 ms naming every
// payload of that time, not one message per payload, and still learns of
// every payload.
func TestPacedPayloadsShareAnnouncements(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a"})
	p.NeighborUp("b")
	p.NeighborUp("c")
	require.NoError(t, p.Step("c", Message{Type: MsgPrune, Root: "a"}))
	p.Ready()
	ihaves, announced := 0, 0
	for i := range 10 {
		require.NoError(t, p.Broadcast("t", fmt.Appendf(nil, "m%d", i), []byte("x")))
		p.Tick()
		for _, env := range p.Ready().Messages {
			if env.Msg.Type == MsgIHave {
				require.Equal(t, "c", env.To)
				ihaves++
				announced += len(env.Msg.IHaves)
			}
		}
	}
	require.Equal(t, 10, announced, "every payload is announced to the lazy peer")
	require.Equal(t, 2, ihaves, "10 payloads over 100 ms at 10 ms ticks: two announcements")
}

// forgetfulHandler has lost every payload, so grafts fall back to the
// protocol's recent cache.
type forgetfulHandler struct{ recordingHandler }

func (forgetfulHandler) Graft([]byte) ([]byte, bool) { return nil, false }

func TestRecentCacheIsBoundedAndAnswersGrafts(t *testing.T) {
	p, err := NewProtocol(Config{Self: "a", MaxRecent: 2, RecentPayloadBytes: 10, RecentTTLTicks: 5})
	require.NoError(t, err)
	require.NoError(t, p.Register("t", &forgetfulHandler{*newRecordingHandler("a")}))
	p.NeighborUp("b")
	for i, payload := range []string{"aaaa", "bbbbbb", "cccccc"} {
		require.NoError(t, p.Broadcast("t", fmt.Appendf(nil, "m%d", i), []byte(payload)))
	}
	p.Ready()
	require.Len(t, p.recent, 2, "MaxRecent")
	require.LessOrEqual(t, p.recentSize, 10, "RecentPayloadBytes")

	// m1 ("bbbbbb") fit the byte budget; m2 did not, so its graft misses.
	require.NoError(t, p.Step("b", Message{Type: MsgGraft, Topic: "t", ID: []byte("m1"), Root: "a", Round: 1}))
	require.NoError(t, p.Step("b", Message{Type: MsgGraft, Topic: "t", ID: []byte("m2"), Root: "a", Round: 1}))
	msgs := p.Ready().Messages
	require.Len(t, msgs, 1)
	require.Equal(t, "bbbbbb", string(msgs[0].Msg.Payload))
	require.EqualValues(t, 1, p.Stats().GraftMisses)

	for range 5 {
		p.Tick()
	}
	require.Empty(t, p.recent)
	require.Zero(t, p.recentSize)
}

func TestTreesAreBounded(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a", MaxTrees: 2})
	p.NeighborUp("b")
	for _, root := range []string{"r1", "r2", "r3"} {
		require.NoError(t, p.Step("b", Message{Type: MsgPrune, Root: root}))
		p.Tick()
	}
	require.Equal(t, []string{"r2", "r3"}, p.Roots())
	// A forgotten tree does not restart all-eager (and flood again): it
	// starts from the links of the tree evicted last, here its own.
	eager, lazy := p.Peers("r1")
	require.Empty(t, eager)
	require.Equal(t, []string{"b"}, lazy)
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a"})
	p.NeighborUp("b")
	p.Ready()
	require.ErrorIs(t, p.Broadcast("nope", []byte("m"), nil), ErrNoHandler)
	require.Error(t, p.Broadcast("t", nil, nil))
	require.Error(t, p.Broadcast("t", bytes.Repeat([]byte("x"), MaxIDLen+1), nil))
	require.Error(t, p.Step("b", Message{Type: 0}))
	require.Error(t, p.Step("b", Message{Type: MsgGossip, Topic: "t", ID: []byte("m")}))
	require.Error(t, p.Step("b", Message{Type: MsgPrune}))
	require.Error(t, p.Step("b", Message{Type: MsgIHave, IHaves: []Announcement{{Topic: "t", Root: "r"}}}))
	require.ErrorIs(t, p.Step("b", Message{Type: MsgGossip, Topic: "nope", ID: []byte("m"), Root: "b"}), ErrNoHandler)
	require.False(t, p.HasReady())
	require.Empty(t, p.recent)
	require.Equal(t, []string{}, p.Roots())
	require.Error(t, p.Register("", newRecordingHandler("a")))
	require.Error(t, p.Register("x", nil))
	_, err := NewProtocol(Config{})
	require.ErrorIs(t, err, ErrNoSelf)
}

func TestNeighborDownForgetsThePeerEverywhere(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a"})
	p.NeighborUp("b")
	p.NeighborUp("c")
	require.NoError(t, p.Step("c", Message{Type: MsgPrune, Root: "a"}))
	require.NoError(t, p.Broadcast("t", []byte("m1"), nil))
	require.NoError(t, p.Step("b", ihaves(1)))
	p.NeighborDown("c")
	p.NeighborDown("b")
	require.Empty(t, p.lazyQueues)
	for _, e := range p.missing {
		require.Empty(t, e.announcers)
	}
	eager, lazy := p.Peers("a")
	require.Empty(t, eager)
	require.Empty(t, lazy)
	require.Empty(t, p.Neighbors())
}

func TestTreeQueryCollectsTheTree(t *testing.T) {
	c := newCluster(t, Config{})
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		c.add(n)
	}
	for _, l := range [][2]string{{"a", "b"}, {"b", "c"}, {"c", "d"}, {"d", "e"}, {"e", "a"}, {"b", "d"}} {
		c.link(l[0], l[1])
	}
	c.dropExchanges()
	require.NoError(t, c.nodes["a"].Broadcast("t", []byte("m1"), nil))
	c.handlers["a"].have["m1"] = nil
	c.collect("a", 0)
	c.deliverFIFO(nil, nil, nil)

	id, err := c.nodes["c"].QueryTree("a")
	require.NoError(t, err)
	c.collect("c", 0)
	c.deliverFIFO(nil, nil, nil)
	got := c.trees["c"]
	require.Len(t, got, 1)
	require.Equal(t, id, got[0].Query)
	var names []string
	for _, node := range got[0].Nodes {
		names = append(names, node.Name)
		eager, lazy := c.nodes[node.Name].Peers("a")
		require.Equal(t, eager, node.Eager, node.Name)
		require.Equal(t, lazy, node.Lazy, node.Name)
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, names)
	require.Zero(t, c.nodes["c"].Now(), "answered without waiting for the budget")
}

func TestTreeQueriesAreBounded(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a", MaxTreeQueries: 1, TreeQueryTicks: 20})
	p.NeighborUp("b")
	_, err := p.QueryTree("a")
	require.NoError(t, err)
	_, err = p.QueryTree("a")
	require.True(t, errors.Is(err, ErrTooManyQueries))
	for range 20 {
		p.Tick()
	}
	rd := p.Ready()
	require.Len(t, rd.Trees, 1, "the budget ends the query with what answered")
	require.Len(t, rd.Trees[0].Nodes, 1)
}

func TestRoundSaturates(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a"})
	p.NeighborUp("b")
	p.NeighborUp("c")
	p.Ready()
	require.NoError(t, p.Step("b", Message{Type: MsgGossip, Topic: "t", ID: []byte("m"), Root: "r", Round: math.MaxUint32}))
	msgs := p.Ready().Messages
	require.Len(t, msgs, 1)
	require.Equal(t, uint32(math.MaxUint32), msgs[0].Msg.Round)
}
