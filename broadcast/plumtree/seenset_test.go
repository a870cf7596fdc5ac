package plumtree

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSeenSetDeliversOnceWithinItsBounds(t *testing.T) {
	var got []string
	s, err := NewSeenSet(SeenSetConfig{
		Deliver:    func(id, payload []byte) { got = append(got, string(id)+"="+string(payload)) },
		MaxEntries: 3, TTLTicks: 5, MaxBytes: 4,
	})
	require.NoError(t, err)
	require.True(t, s.Add([]byte("own"), []byte("xx")))
	merge := func(id string, payload []byte) Verdict {
		v, actions := s.Merge("peer", []byte(id), payload)
		require.Nil(t, actions)
		return v
	}
	require.Equal(t, Duplicate, merge("own", []byte("xx")), "own broadcast is a duplicate")
	require.Equal(t, New, merge("a", []byte("yy")))
	require.Equal(t, Duplicate, merge("a", []byte("yy")))
	require.True(t, s.IsStale([]byte("a")))
	p, ok := s.Graft([]byte("a"))
	require.True(t, ok)
	require.Equal(t, "yy", string(p))
	require.Equal(t, New, merge("b", []byte("zz")))
	_, ok = s.Graft([]byte("b"))
	require.False(t, ok, "over MaxBytes: id kept, payload not")
	require.Equal(t, []string{"a=yy", "b=zz"}, got)

	// MaxEntries evicts the oldest, which then counts as new again: the
	// documented limit.
	require.Equal(t, New, merge("c", nil))
	require.Equal(t, 3, s.Len())
	require.False(t, s.IsStale([]byte("own")))

	for range 5 {
		s.Tick()
	}
	require.Zero(t, s.Len(), "TTL")
	require.Zero(t, s.bytes)
	require.Nil(t, s.ExchangeStart("p"))
	reply, actions := s.ExchangeReceive(Exchange{Peer: "p"}, []byte("x"))
	require.Nil(t, reply)
	require.Nil(t, actions)

	_, err = NewSeenSet(SeenSetConfig{})
	require.Error(t, err)
}

func TestSeenSetIsTickedByThePlumtree(t *testing.T) {
	p, err := NewProtocol(Config{Self: "a"})
	require.NoError(t, err)
	s, err := NewSeenSet(SeenSetConfig{Deliver: func([]byte, []byte) {}, TTLTicks: 3})
	require.NoError(t, err)
	require.NoError(t, p.Register("t", s))
	for i := range 2 {
		s.Add(fmt.Appendf(nil, "m%d", i), nil)
	}
	for range 3 {
		p.Tick()
	}
	require.Zero(t, s.Len())
}
