package crdt

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpsReachAnotherReplica(t *testing.T) {
	a := New(Config{Self: "a", Incarnation: 1})
	b := New(Config{Self: "b", Incarnation: 1})
	j1 := a.LocalJoin("s", "/g", "m1", 1, Meta{"zone": "eu"}, 10)
	j2 := a.LocalJoin("s", "/g", "m1", 1, nil, 11)
	l1, err := a.LocalLeave("s", "/g", "m1", 1)
	require.NoError(t, err)

	require.Equal(t, Buffered, b.Apply(&j2), "an op past a gap waits")
	require.Equal(t, Applied, b.Apply(&j1), "the missing op applies and drains the buffer")
	require.Equal(t, Duplicate, b.Apply(&j2))
	require.Equal(t, Applied, b.Apply(&l1))

	e, ok := b.Group("s", "/g").Lookup("a", "m1")
	require.True(t, ok)
	require.Equal(t, Entry{Member: "m1", Count: 1, Joined: 10, Meta: Meta{"zone": "eu"}}, e)
	ad, bd := a.Digest(), b.Digest()
	require.Equal(t, ad.Owners[0], bd.Owners[0])
}

func TestLeaveOfANonMemberChangesNothing(t *testing.T) {
	a := New(Config{Self: "a", Incarnation: 1})
	_, err := a.LocalLeave("s", "/g", "m", 1)
	require.ErrorIs(t, err, ErrNotMember)
	_, v := a.Self()
	require.Equal(t, Version{1, 0}, v, "a refused leave consumes no sequence number")
}

func TestTombstoneBlocksLateOpsAndSelfRefutes(t *testing.T) {
	a := New(Config{Self: "a", Incarnation: 1})
	b := New(Config{Self: "b", Incarnation: 1})
	j := a.LocalJoin("s", "/g", "m", 1, nil, 1)
	late := a.LocalJoin("s", "/g", "n", 1, nil, 2)
	require.Equal(t, Applied, b.Apply(&j))
	require.True(t, b.Tombstone("a", 1, 0))
	require.Nil(t, b.Group("s", "/g"), "a dead owner's entries go")
	require.Equal(t, Refused, b.Apply(&late), "a late op cannot resurrect a dead owner")

	d := b.Snapshot()
	a.Merge(&d)
	require.True(t, a.NeedsRefute())
	st := a.Refute()
	require.False(t, a.NeedsRefute())
	require.Equal(t, Version{2, 1}, st.Version)
	require.Equal(t, Applied, b.MergeOwner(&st))
	sa, sb := a.Snapshot(), b.Snapshot()
	require.Equal(t, sa.Owners, sb.Owners)
}

// A join with metadata replaces the entry's metadata, on the owner and on
// every replica, whether they apply the ops or merge the state; a join
// without metadata keeps it.
func TestJoinWithMetadataReplacesTheMetadata(t *testing.T) {
	a := newReplica("a")
	ops := []Op{
		a.LocalJoin("s", "/g", "m", 1, Meta{"zone": "eu", "rack": "1"}, 1),
		a.LocalJoin("s", "/g", "m", 1, Meta{"zone": "us"}, 2),
		a.LocalJoin("s", "/g", "m", 1, nil, 3),
	}
	byOps, byMerge := newReplica("b"), newReplica("c")
	var heard []*Change
	byOps.cfg.Observer = func(c *Change) { heard = append(heard, new(*c)) }
	for i := range ops {
		require.Equal(t, Applied, byOps.Apply(&ops[i]))
	}
	snap := a.Snapshot()
	byMerge.Merge(&snap)
	for _, s := range []*State{a, byOps, byMerge} {
		e, ok := s.Group("s", "/g").Lookup("a", "m")
		require.True(t, ok)
		require.Equal(t, Entry{Member: "m", Count: 3, Joined: 1, Meta: Meta{"zone": "us"}}, e)
	}
	require.Equal(t, Meta{"zone": "us"}, heard[1].Entry.Meta, "the observer hears the new metadata")
}
