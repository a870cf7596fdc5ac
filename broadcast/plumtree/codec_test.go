package plumtree

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func sampleMessages() []Message {
	return []Message{
		{Type: MsgGossip, Topic: "registry", ID: []byte("op-1"), Root: "n1", Round: 3, Payload: []byte("join")},
		{Type: MsgGossip, Topic: "registry", ID: []byte("op-2"), Root: "n1", Round: 1, Siblings: []string{"n2", "n3", "n4"}, Payload: []byte("batch")},
		{Type: MsgGossip, Topic: "t", ID: []byte{0}, Root: "n1"},
		{Type: MsgIHave, IHaves: []Announcement{{Topic: "t", ID: []byte("a"), Root: "n1", Round: 1}, {Topic: "u", ID: []byte("b"), Root: "n2", Round: 7}}},
		{Type: MsgGraft, Topic: "t", ID: []byte("a"), Root: "n1", Round: 2},
		{Type: MsgGraft, Root: "n1"},
		{Type: MsgPrune, Root: "n1"},
		{Type: MsgExchange, Topic: "t", Exchange: 42, Step: 1, Payload: []byte("digest")},
		{Type: MsgExchangeEnd, Topic: "t", Exchange: 42, Step: 2},
		{Type: MsgGossip, Topic: "t", ID: []byte("relayed"), Root: "n2", Round: RoundUnknown, Payload: []byte("state")},
		{Type: MsgTreeQuery, Origin: "n3", Query: 9, Root: "n1", Budget: 18},
		{Type: MsgTreeReply, Origin: "n3", Query: 9, Tree: []TreeNode{{Name: "n1", Eager: []string{"n2"}, Lazy: []string{"n4", "n5"}}, {Name: "n2"}}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b := AppendMessage(nil, m)
		got, err := DecodeMessage(b)
		require.NoError(t, err, m.String())
		require.Equal(t, AppendMessage(nil, got), b, m.String())
		require.Equal(t, m.Type, got.Type)
		require.Equal(t, m.String(), got.String())

		// Every strict prefix is truncated and every extension trails.
		for i := range len(b) {
			_, err := DecodeMessage(b[:i])
			require.Error(t, err, "%v cut at %d", m, i)
		}
		_, err = DecodeMessage(append(b, 0))
		require.ErrorContains(t, err, "trailing")
	}
}

func TestCodecRefusesOversizedFields(t *testing.T) {
	long := make([]byte, MaxIDLen+1)
	_, err := DecodeMessage(AppendMessage(nil, Message{Type: MsgGossip, Topic: "t", ID: long, Root: "r"}))
	require.ErrorContains(t, err, "exceeds limit")
	_, err = DecodeMessage([]byte{byte(numMsgTypes)})
	require.ErrorContains(t, err, "unknown message type")
	// A count far beyond what the body holds must not allocate for it.
	_, err = DecodeMessage([]byte{byte(MsgIHave), 0x80, 0x20})
	require.Error(t, err)
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(AppendMessage(nil, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes to the same.
		again := AppendMessage(nil, m)
		m2, err := DecodeMessage(again)
		if err != nil {
			t.Fatalf("re-encoded %v does not decode: %v", m, err)
		}
		if string(AppendMessage(nil, m2)) != string(again) {
			t.Fatalf("round trip changed %v", m)
		}
	})
}

// FuzzStep feeds whatever decodes to a Plumtree with neighbours: no input
// may panic it, and its bounded state stays bounded.
func FuzzStep(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(AppendMessage(nil, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		p, err := NewProtocol(Config{Self: "a", MaxMissing: 8, MaxTrees: 4})
		if err != nil {
			t.Fatal(err)
		}
		h := newRecordingHandler("a")
		for _, topic := range []string{"t", "u", "registry"} {
			if err := p.Register(topic, h); err != nil {
				t.Fatal(err)
			}
		}
		p.NeighborUp("n1")
		p.NeighborUp("n3")
		_ = p.Step("n1", m)
		_ = p.Step("stranger", m)
		for range 5 {
			p.Tick()
		}
		p.Ready()
		if len(p.missing) > 8 || p.trees.len() > 4 {
			t.Fatalf("bounds broken: %d missing, %d trees", len(p.missing), p.trees.len())
		}
	})
}
