package crdt

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// A purge must name the incarnation of the process that died, as the
// membership layer advertised it. Here the replica knows x only at
// incarnation 1; x restarted as 2, joined members and died. A tombstone at
// the advertised 2 holds against x@2's ops and state arriving later; one
// at the 1 the replica happened to know lets them back in.
func TestPurgeOnTheAdvertisedIncarnationHolds(t *testing.T) {
	x1 := New(Config{Self: "x", Incarnation: 1})
	early := x1.LocalJoin("s", "/g", "old", 1, nil, 1)
	x2 := New(Config{Self: "x", Incarnation: 2})
	late := []Op{x2.LocalJoin("s", "/g", "new1", 1, nil, 2), x2.LocalJoin("s", "/g", "new2", 1, nil, 3)}
	lateState, _ := x2.OwnerState("x")

	for _, tc := range []struct {
		inc   uint64
		holds bool
	}{{2, true}, {1, false}} {
		t.Run(fmt.Sprintf("tombstone at %d", tc.inc), func(t *testing.T) {
			r := newReplica("r")
			require.Equal(t, Applied, r.Apply(&early))
			require.True(t, r.Tombstone("x", tc.inc, 0))
			require.Nil(t, r.Group("s", "/g"), "the purge empties x")
			results := []Result{r.Apply(&late[1]), r.Apply(&late[0]), r.MergeOwner(&lateState)}
			if tc.holds {
				require.Equal(t, []Result{Refused, Refused, Refused}, results)
				require.True(t, r.Known("x", late[1].Version()), "a refused op counts as known: nothing to forward or graft")
				require.Nil(t, r.Group("s", "/g"), "x's members stay purged")
				_, known := r.Owner("x")
				require.False(t, known)
			} else {
				require.NotNil(t, r.Group("s", "/g"), "the dead process's members came back")
			}
		})
	}
}

// churn has 5,000 owners join a member each and die, on a replica whose
// membership layer (Alive) forgets the dead; a few owners stay alive.
type churn struct {
	r       *State
	dead    map[string]bool
	lastOps map[string]Op
	stale   Delta // a peer's snapshot from before the deaths
}

const churned = 5_000

func newChurn(t *testing.T) *churn {
	c := &churn{dead: map[string]bool{}, lastOps: map[string]Op{}}
	c.r = New(Config{Self: "r", Incarnation: 1, Alive: func(owner string) bool { return !c.dead[owner] }})
	peer := newReplica("peer")
	for i := range churned + 10 {
		name := fmt.Sprintf("node-%05d", i)
		o := New(Config{Self: name, Incarnation: uint64(1_700_000_000_000 + i)})
		op := o.LocalJoin("svc", "/workers", "w", 1, Meta{"zone": "eu"}, int64(i))
		require.Equal(t, Applied, c.r.Apply(&op))
		require.Equal(t, Applied, peer.Apply(&op))
		c.lastOps[name] = o.LocalJoin("svc", "/workers", "w2", 1, nil, int64(i))
	}
	c.stale = peer.Snapshot()
	for i := range churned {
		name := fmt.Sprintf("node-%05d", i)
		c.dead[name] = true
		v, _ := c.r.Owner(name)
		require.True(t, c.r.Tombstone(name, v.Incarnation, int64(i)))
		peer.Tombstone(name, v.Incarnation, int64(i))
	}
	return c
}

func digestBytes(s *State) int {
	dg := s.Digest()
	return len(AppendDigest(nil, &dg))
}

// Tombstones are collected after a grace period, and collection cannot
// resurrect: the owners are gone from the membership layer, so their late
// ops and stale states are refused, and their tombstones are not taken
// back from peers that have not collected yet.
func TestCollectedTombstonesDoNotResurrect(t *testing.T) {
	c := newChurn(t)
	r := c.r
	withTombstones := digestBytes(r)
	require.Equal(t, churned+10, r.Summary().Lines)

	require.Zero(t, r.CollectTombstones(0), "nothing is older than the grace period yet")
	require.Equal(t, churned/2, r.CollectTombstones(churned/2))
	require.Equal(t, churned-churned/2, r.CollectTombstones(churned))
	collected := digestBytes(r)
	t.Logf("digest with %d tombstones: %d bytes; after collection: %d bytes", churned, withTombstones, collected)
	require.Equal(t, 10, r.Summary().Lines, "only the live owners are left")
	sum, buckets := recomputed(r)
	require.Equal(t, sum, r.Summary())
	require.Equal(t, buckets, r.BucketHashes())

	fresh := newReplica("fresh")
	for i := churned; i < churned+10; i++ {
		st, _ := r.OwnerState(fmt.Sprintf("node-%05d", i))
		fresh.MergeOwner(&st)
	}
	require.Equal(t, fresh.Summary(), r.Summary(), "as if the churn never happened")

	// Late ops and a stale peer's snapshot bring nothing back.
	for i := range churned {
		op := c.lastOps[fmt.Sprintf("node-%05d", i)]
		require.Equal(t, Refused, r.Apply(&op))
	}
	r.Merge(&c.stale)
	require.Equal(t, 10, r.Group("svc", "/workers").Len(), "the live owners' members only")
	require.Equal(t, 10, r.Summary().Lines, "no line of a collected owner came back")
}

// A tombstone a peer still holds is not taken back once collected here:
// its owner is not alive any more. It is taken while the owner is alive.
func TestMergeTombstoneRefusesOwnersNotAlive(t *testing.T) {
	dead := map[string]bool{}
	r := New(Config{Self: "r", Incarnation: 1, Alive: func(owner string) bool { return !dead[owner] }})
	require.True(t, r.MergeTombstone("x", 3, 5), "x is alive here: the peer's verdict is taken")
	dead["x"] = true
	require.Equal(t, 1, r.CollectTombstones(6))
	require.False(t, r.MergeTombstone("x", 3, 7))
	_, ok := r.Tombstoned("x")
	require.False(t, ok)
	require.True(t, r.Tombstone("x", 3, 7), "the local verdict is always recorded")
}

// Recording a tombstone again moves its time forward: the grace period
// counts from this replica's latest verdict.
func TestTombstoneTimeMovesForward(t *testing.T) {
	r := newReplica("r")
	require.True(t, r.Tombstone("x", 3, 5))
	require.False(t, r.Tombstone("x", 3, 9))
	require.Zero(t, r.CollectTombstones(8))
	require.Equal(t, 1, r.CollectTombstones(10))
}

// A tombstone learned from a peer gets its grace period from the time the
// merge gives it, not from whatever time the replica saw last.
func TestMergedTombstoneGetsItsGracePeriod(t *testing.T) {
	peer := newReplica("peer")
	peer.Tombstone("x", 3, 100)
	d := peer.Snapshot()
	r := newReplica("r")
	r.MergeAt(&d, 100)
	require.Zero(t, r.CollectTombstones(50), "stamped 100, not 0")
	_, ok := r.Tombstoned("x")
	require.True(t, ok)
}
