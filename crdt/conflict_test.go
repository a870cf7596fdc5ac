package crdt

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Two processes that start under one name with one incarnation make
// different ops under the same (owner, incarnation, seq). Before, replicas
// holding either had equal digests and diverged silently. The chain hash
// tells them apart: digests differ, every replica keeps the same one of the
// two (the higher chain), the conflict is counted, and a process that sees
// its own version with another chain refutes.
func TestReusedIncarnationIsDetected(t *testing.T) {
	p1 := New(Config{Self: "x", Incarnation: 5})
	p2 := New(Config{Self: "x", Incarnation: 5})
	p1.LocalJoin("s", "/g", "one", 1, nil, 1)
	p2.LocalJoin("s", "/g", "two", 1, nil, 1)
	s1, s2 := p1.Snapshot(), p2.Snapshot()
	require.Equal(t, s1.Owners[0].Version, s2.Owners[0].Version)
	require.NotEqual(t, s1.Owners[0].Chain, s2.Owners[0].Chain)

	r1, r2 := newReplica("r1"), newReplica("r2")
	r1.Merge(&s1)
	r2.Merge(&s2)
	d1, d2 := r1.Digest(), r2.Digest()
	require.False(t, d1.Equal(&d2), "different data, different digests")
	require.NotEqual(t, r1.Summary(), r2.Summary())

	// An exchange both ways: the replicas agree, each counts the conflict.
	d := r2.Delta(&d1)
	r1.Merge(&d)
	d2 = r2.Digest()
	d = r1.Delta(&d2)
	r2.Merge(&d)
	require.Equal(t, r1.Snapshot(), r2.Snapshot())
	require.Equal(t, uint64(1), r1.Conflicts())
	require.Equal(t, uint64(1), r2.Conflicts())
	// Seen again, the same conflict is not counted again.
	r1.Merge(&s1)
	r1.Merge(&s2)
	require.Equal(t, uint64(1), r1.Conflicts())

	// Each process learns of the other from a replica's digest or state,
	// and refutes; the refute's higher incarnation settles it.
	winner, loser := p1, p2
	if s2.Owners[0].Chain > s1.Owners[0].Chain {
		winner, loser = p2, p1
	}
	kept := r1.Digest()
	loser.Delta(&kept)
	require.True(t, loser.NeedsRefute(), "a process seeing its version with another chain refutes")
	st, _ := r1.OwnerState("x")
	require.Equal(t, Refused, winner.MergeOwner(&st))
	require.False(t, winner.NeedsRefute(), "the kept chain is the winner's own")
	fresh := loser.Refute()
	require.Equal(t, Applied, r1.MergeOwner(&fresh))
	require.Equal(t, loser.Snapshot().Owners, r1.Snapshot().Owners)
}

// The chain follows the ops: a replica that applied an owner's ops holds
// the owner's own chain, so converged replicas never report a conflict.
func TestChainsAgreeAcrossOpsAndMerges(t *testing.T) {
	a := newReplica("a")
	var ops []Op
	ops = append(ops, a.LocalJoin("s", "/g", "m", 2, Meta{"k": "v"}, 1))
	op, err := a.LocalSetMeta("s", "/g", "m", nil)
	require.NoError(t, err)
	ops = append(ops, op)
	op, err = a.LocalLeave("s", "/g", "m", 1)
	require.NoError(t, err)
	ops = append(ops, op)

	byOps := newReplica("b")
	for i := len(ops) - 1; i >= 0; i-- {
		byOps.Apply(&ops[i])
	}
	byMerge := newReplica("c")
	snap := a.Snapshot()
	byMerge.Merge(&snap)
	want, _ := a.OwnerState("a")
	for _, r := range []*State{byOps, byMerge} {
		got, ok := r.OwnerState("a")
		require.True(t, ok)
		require.Equal(t, want, got)
		dg := a.Digest()
		r.Delta(&dg)
		require.Zero(t, r.Conflicts())
	}
}
