package crdt

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// threeMembers returns owner a with three members and a replica b that
// applied them, with b's observer reports collected in heard.
func threeMembers(t *testing.T, heard *[]*Change) (a, b *State) {
	a = newReplica("a")
	b = New(Config{Self: "b", Incarnation: 1, Observer: func(c *Change) { *heard = append(*heard, new(*c)) }})
	for i, m := range []string{"m1", "m2", "m3"} {
		op := a.LocalJoin("s", "/g", m, 1, Meta{"i": m}, int64(i))
		require.Equal(t, Applied, b.Apply(&op))
	}
	*heard = nil
	return a, b
}

// A refute announces the whole state as one entry, applied at once: a
// replica's subscribers hear nothing for members that did not change.
// Before, a refute was one join op per member, and the first of them
// emptied the owner: 3 leaves and 3 joins for 3 members.
func TestRefuteIsSilentForUnchangedMembers(t *testing.T) {
	var heard []*Change
	a, b := threeMembers(t, &heard)
	a.Tombstone("a", 1, 0)
	require.True(t, a.NeedsRefute())
	st := a.Refute()
	require.Equal(t, Version{2, 1}, st.Version, "the refute is the new incarnation's first step")
	require.Equal(t, Applied, b.MergeOwner(&st))
	require.Empty(t, heard, "no leave and rejoin of unchanged members")
	require.Equal(t, 3, b.Group("s", "/g").Len())
	require.Equal(t, a.Snapshot().Owners, b.Snapshot().Owners)
	require.Equal(t, Duplicate, b.MergeOwner(&st))
}

// An op made after a refute names the new incarnation; arriving before the
// refute, it waits, and the owner's members stay until the gap fills.
// Before, the first op of a newer incarnation emptied the owner at once.
func TestOutOfOrderRefuteKeepsMembersUntilTheGapFills(t *testing.T) {
	var heard []*Change
	a, b := threeMembers(t, &heard)
	a.Tombstone("a", 1, 0)
	st := a.Refute()
	after, err := a.LocalLeave("s", "/g", "m2", 1)
	require.NoError(t, err)

	require.Equal(t, Buffered, b.Apply(&after))
	require.True(t, b.Known("a", after.Version()), "a buffered op counts as known")
	require.Equal(t, 3, b.Group("s", "/g").Len(), "the owner is not emptied before the gap fills")
	require.Empty(t, heard)

	require.Equal(t, Applied, b.MergeOwner(&st))
	require.Zero(t, b.Pending("a"))
	require.Len(t, heard, 1, "only m2's leave is heard")
	require.Equal(t, Left, heard[0].Kind)
	require.Equal(t, "m2", heard[0].Entry.Member)
	require.Equal(t, a.Snapshot().Owners, b.Snapshot().Owners)
}

// A fresh process of a newer incarnation starts empty: its first op
// replaces the owner's entries at once, as before.
func TestFirstOpOfANewIncarnationReplacesTheOwner(t *testing.T) {
	var heard []*Change
	_, b := threeMembers(t, &heard)
	a2 := New(Config{Self: "a", Incarnation: 2})
	op := a2.LocalJoin("s", "/g", "m9", 1, nil, 9)
	require.Equal(t, Applied, b.Apply(&op))
	require.Equal(t, a2.Snapshot().Owners, b.Snapshot().Owners)
}

// The refute's incarnation is max(clock, last known + 1).
func TestRefuteIncarnationFollowsTheClock(t *testing.T) {
	clock := uint64(1_000)
	a := New(Config{Self: "a", Incarnation: 7, Clock: func() uint64 { return clock }})
	a.Tombstone("a", 7, 0)
	st := a.Refute()
	require.Equal(t, uint64(1_000), st.Version.Incarnation, "the clock is ahead: the clock")

	clock = 3 // the clock went backwards
	a.Tombstone("a", 1_000, 0)
	st = a.Refute()
	require.Equal(t, uint64(1_001), st.Version.Incarnation, "the clock is behind: last known + 1")
}

// Every path by which a replica hears of itself can reveal that the
// cluster knows a newer version of it (a restart whose clock went
// backwards): an op, a merged state, a peer's digest, a tombstone. Before,
// a peer's digest (the peer pulling from this node) revealed nothing, so
// the node's ops stayed refused until it happened to pull.
func TestEveryPathRevealsAClaimAboutSelf(t *testing.T) {
	old := New(Config{Self: "a", Incarnation: 3})
	op := old.LocalJoin("s", "/g", "m", 1, nil, 1)
	peer := newReplica("b")
	require.Equal(t, Applied, peer.Apply(&op))
	st, _ := peer.OwnerState("a")
	peerDigest := peer.Digest()

	paths := map[string]func(a *State){
		"apply":     func(a *State) { require.Equal(t, Refused, a.Apply(&op)) },
		"merge":     func(a *State) { require.Equal(t, Refused, a.MergeOwner(&st)) },
		"delta":     func(a *State) { a.Delta(&peerDigest) },
		"tombstone": func(a *State) { a.Tombstone("a", 1, 0) },
	}
	for name, reveal := range paths {
		a := New(Config{Self: "a", Incarnation: 1, Clock: func() uint64 { return 2 }})
		require.False(t, a.NeedsRefute())
		reveal(a)
		require.True(t, a.NeedsRefute(), name)
		st := a.Refute()
		require.False(t, a.NeedsRefute(), name)
		if name != "tombstone" {
			require.Equal(t, uint64(4), st.Version.Incarnation, "%s: above the cluster's a@3 although the clock reads 2", name)
			require.Equal(t, Applied, peer.MergeOwner(&st), name)
			peer = newReplica("b")
			require.Equal(t, Applied, peer.Apply(&op))
		}
	}
}
