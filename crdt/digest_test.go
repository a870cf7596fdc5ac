package crdt

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// An owner record with nothing applied (seq 0) means the same as an unknown
// owner: it is no digest line. Before, every replica listed itself at seq
// 0, and merges spread those lines, so digests of replicas holding the
// same data disagreed until every replica had every other's empty record.
func TestDigestLeavesOutEmptyRecords(t *testing.T) {
	a := newReplica("a")
	dg := a.Digest()
	require.Empty(t, dg.Owners, "a replica with nothing applied lists no owner")
	require.Equal(t, Summary{}, a.Summary())

	a.LocalJoin("s", "/g", "m", 1, nil, 1)
	_, err := a.LocalLeave("s", "/g", "m", 1)
	require.NoError(t, err)
	dg = a.Digest()
	require.Len(t, dg.Owners, 1, "an owner whose members all left is listed: seq 2 is not seq 0")
}

// An empty record still replaces stale entries: it goes to a peer whose
// digest lists an older version of its owner, never to one that lists
// nothing.
func TestDeltaSendsAnEmptyRecordOverAnOlderVersion(t *testing.T) {
	x := New(Config{Self: "x", Incarnation: 1})
	stale := newReplica("stale")
	op := x.LocalJoin("s", "/g", "m", 1, nil, 1)
	require.Equal(t, Applied, stale.Apply(&op))

	// x restarts empty and is falsely declared dead at its new incarnation;
	// it refutes with nothing to announce: an empty record at seq 0.
	x = New(Config{Self: "x", Incarnation: 2})
	x.Tombstone("x", 2, 0)
	st := x.Refute()
	require.Equal(t, Version{3, 0}, st.Version)
	fresh := newReplica("fresh")
	require.Equal(t, Applied, fresh.MergeOwner(&st))
	dg := fresh.Digest()
	require.Empty(t, dg.Owners, "the empty record is no line")

	nothing := newReplica("nothing")
	dgNothing := nothing.Digest()
	d := fresh.Delta(&dgNothing)
	require.Empty(t, d.Owners, "nothing to send to a peer that lists nothing")

	dgStale := stale.Digest()
	d = fresh.Delta(&dgStale)
	require.Len(t, d.Owners, 1, "the empty record goes to a peer listing x@1.1")
	stale.Merge(&d)
	require.Nil(t, stale.Group("s", "/g"), "the restart replaced the stale entries")
	dgStale, dg = stale.Digest(), fresh.Digest()
	require.True(t, dg.Equal(&dgStale))
}

// Replicas' digests are equal exactly when they hold the same data (the
// same owner states and tombstones), whatever their own names, across
// restarts, tombstones and refutes; after exchanges they are.
func TestDigestsAreEqualExactlyWhenDataIs(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, defaultShape)
		reps := []*State{partial(r, "r0", h), partial(r, "r1", h), partial(r, "r2", h)}
		check := func() {
			for i := range reps {
				for j := range reps {
					di, dj := reps[i].Digest(), reps[j].Digest()
					si, sj := reps[i].Snapshot(), reps[j].Snapshot()
					require.Equal(t, di.Equal(&dj), equalSnapshots(&si, &sj), "r%d r%d\n%v\n%v", i, j, di, dj)
					require.Equal(t, di.Equal(&dj), reps[i].Summary() == reps[j].Summary())
				}
			}
		}
		check()
		// Buffered ops drain when a merge fills the gap before them, which
		// can put a replica ahead of the one it merged from: rounds repeat
		// until one changes nothing.
		for round := 0; ; round++ {
			require.Less(t, round, len(h.events)+2, "exchanges do not settle")
			changed := false
			for i := range reps {
				for j := range reps {
					if i != j {
						dg := reps[i].Digest()
						d := reps[j].Delta(&dg)
						changed = changed || len(d.Owners) > 0
						reps[i].Merge(&d)
					}
				}
			}
			if !changed {
				break
			}
		}
		check()
		for i := 1; i < len(reps); i++ {
			di, d0 := reps[i].Digest(), reps[0].Digest()
			require.True(t, di.Equal(&d0), "converged after exchanges\n%v\n%v", di, d0)
		}
	})
}

func equalSnapshots(a, b *Delta) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// recomputed derives the fingerprints from the digest lines, the slow way.
func recomputed(s *State) (Summary, []uint64) {
	dg := s.Digest()
	buckets := make([]uint64, DigestBuckets)
	var sum Summary
	add := func(owner string, h uint64) {
		sum.Hash += h
		sum.Lines++
		buckets[Bucket(owner)] += h
	}
	for _, ov := range dg.Owners {
		add(ov.Owner, ownerLineHash(ov.Owner, ov.Version, ov.Chain))
	}
	for _, ov := range dg.Tombstones {
		add(ov.Owner, tombstoneLineHash(ov.Owner, ov.Incarnation))
	}
	return sum, buckets
}

// The incrementally kept fingerprints always equal those recomputed from
// the digest, through ops, buffers, merges, tombstones, refutes and
// collection.
func TestFingerprintsFollowTheDigest(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, defaultShape)
		s := New(Config{Self: "n1", Incarnation: 1}) // shares a name with an owner: its own lines too
		other := partial(r, "o", h)
		requireFingerprints := func() {
			t.Helper()
			sum, buckets := recomputed(s)
			require.Equal(t, sum, s.Summary())
			require.Equal(t, buckets, s.BucketHashes())
		}
		for i, e := range scramble(r, h.events, 0.1, 0.2) {
			e.deliver(s)
			switch r.IntN(10) {
			case 0:
				d := other.Delta(&Digest{})
				s.Merge(&d)
			case 1:
				s.CollectTombstones(int64(r.IntN(3)))
			case 2:
				if s.NeedsRefute() {
					s.Refute()
				}
			case 3:
				s.LocalJoin("s", "/g", "own", 1, nil, int64(i))
			}
			requireFingerprints()
		}
	})
}

// DigestOf and DeltaOf are Digest and Delta restricted to some buckets; an
// exchange that compares bucket hashes and sends lines only for buckets
// that differ converges as a full exchange does.
func TestBucketedExchangeConverges(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, defaultShape)
		a, b := partial(r, "a", h), partial(r, "b", h)
		var buckets []int
		for i := range DigestBuckets {
			if r.IntN(2) == 0 {
				buckets = append(buckets, i)
			}
		}
		full := a.Digest()
		part := a.DigestOf(buckets)
		want := Digest{}
		for _, ov := range full.Owners {
			if slices.Contains(buckets, Bucket(ov.Owner)) {
				want.Owners = append(want.Owners, ov)
			}
		}
		for _, ov := range full.Tombstones {
			if slices.Contains(buckets, Bucket(ov.Owner)) {
				want.Tombstones = append(want.Tombstones, ov)
			}
		}
		require.True(t, want.Equal(&part), "DigestOf is Digest filtered")
		twice := a.DigestOf(append(append([]int{-1, DigestBuckets}, buckets...), buckets...))
		require.True(t, want.Equal(&twice), "repeated and out-of-range buckets change nothing")

		exchange := func(to, from *State) {
			th, fh := to.BucketHashes(), from.BucketHashes()
			var differ []int
			for i := range th {
				if th[i] != fh[i] {
					differ = append(differ, i)
				}
			}
			dg := to.DigestOf(differ)
			d := from.DeltaOf(&dg, differ)
			to.Merge(&d)
		}
		// Repeated, since a merge that fills a gap releases buffered ops.
		for round := 0; a.Summary() != b.Summary(); round++ {
			require.Less(t, round, len(h.events)+2, "exchanges do not settle")
			exchange(a, b)
			exchange(b, a)
		}
		da, db := a.Digest(), b.Digest()
		require.True(t, da.Equal(&db), "\n%v\n%v", da, db)
		require.Equal(t, a.Summary(), b.Summary())
	})
}
