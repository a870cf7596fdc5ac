package crdt

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// The fuzz targets hold the decoders to three promises: no input panics;
// whatever decodes re-encodes to a canonical form that decodes to the same
// value; and what decodes is safe to hand to the state machine, which
// afterwards still produces snapshots every peer can decode.

func fuzzHistory() *history {
	return genHistory(rand.New(rand.NewPCG(42, 42)), historyShape{owners: 3, steps: 20, tombstones: true})
}

// populate gives a replica some state, so decoded input meets owners,
// entries, tombstones and buffered ops rather than an empty map.
func populate(s *State, h *history) *State {
	feed(s, scramble(rand.New(rand.NewPCG(7, 7)), h.events, 0.1, 0.3))
	return s
}

// requireTransmittable checks the replica's snapshot survives the wire: a
// state a peer could not decode would end anti-entropy with this replica.
func requireTransmittable(t *testing.T, s *State) {
	t.Helper()
	snap := s.Snapshot()
	got, err := DecodeDelta(AppendDelta(nil, &snap))
	require.NoError(t, err, "the replica's own snapshot does not decode")
	require.Equal(t, snap, got)
	dg := s.Digest()
	gotDg, err := DecodeDigest(AppendDigest(nil, &dg))
	require.NoError(t, err)
	require.True(t, dg.Equal(&gotDg))
	sum, buckets := recomputed(s)
	require.Equal(t, sum, s.Summary(), "the kept fingerprint is the digest's")
	require.Equal(t, buckets, s.BucketHashes())
}

func FuzzDecodeOp(f *testing.F) {
	h := fuzzHistory()
	for _, e := range h.events {
		if e.op != nil {
			f.Add(AppendOp(nil, e.op))
		}
	}
	op := validOp()
	f.Add(AppendOp(nil, &op))
	op.Count, op.Owner = ^uint32(0), "n0"
	f.Add(AppendOp(nil, &op))
	op.Owner = "r"
	f.Add(AppendOp(nil, &op))
	h0 := validOp()
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := DecodeOp(b)
		// A batch's decoder, which shares the previous op's names, reads
		// exactly what DecodeOp reads.
		for _, prev := range []*Op{nil, &h0, &op} {
			after, errAfter := DecodeOpAfter(b, prev)
			require.Equal(t, err == nil, errAfter == nil, "DecodeOpAfter and DecodeOp disagree on validity")
			require.Equal(t, op, after)
		}
		if err != nil {
			return
		}
		canon := AppendOp(nil, &op)
		again, err := DecodeOp(canon)
		require.NoError(t, err)
		require.Equal(t, op, again)
		require.True(t, bytes.Equal(canon, AppendOp(nil, &again)), "encoding is canonical")

		// The op and its successor (so a join meets an existing entry).
		l := newListener(t, "r")
		populate(l.s, h)
		first := l.s.Apply(&op)
		next := op
		next.Seq++
		l.s.Apply(&next)
		l.check()
		if first == Applied || first == Buffered {
			require.Contains(t, []Result{Duplicate, Buffered}, l.s.Apply(&op), "a second delivery changes nothing")
		}
		requireTransmittable(t, l.s)
	})
}

func FuzzDecodeDigest(f *testing.F) {
	h := fuzzHistory()
	s := populate(newReplica("r"), h)
	dg := s.Digest()
	f.Add(AppendDigest(nil, &dg))
	f.Add(AppendDigest(nil, &Digest{}))
	other := partial(rand.New(rand.NewPCG(3, 3)), "o", h)
	dg = other.Digest()
	f.Add(AppendDigest(nil, &dg))
	f.Fuzz(func(t *testing.T, b []byte) {
		dg, err := DecodeDigest(b)
		if err != nil {
			return
		}
		canon := AppendDigest(nil, &dg)
		again, err := DecodeDigest(canon)
		require.NoError(t, err)
		require.Equal(t, dg, again)
		require.True(t, bytes.Equal(canon, AppendDigest(nil, &again)), "encoding is canonical")

		// Whatever a peer claims to have, the answer is a delta that
		// decodes, and that a replica can merge; restricted to some
		// buckets, it is the full answer's part in those buckets.
		d := s.Delta(&dg)
		got, err := DecodeDelta(AppendDelta(nil, &d))
		require.NoError(t, err)
		require.Equal(t, d, got)
		x := newReplica("x")
		x.Merge(&got)
		requireTransmittable(t, x)
		var buckets []int
		for _, ov := range dg.Owners {
			buckets = append(buckets, Bucket(ov.Owner))
		}
		slices.Sort(buckets)
		buckets = slices.Compact(buckets)
		part := s.DeltaOf(&dg, buckets)
		for _, st := range part.Owners {
			require.Contains(t, buckets, Bucket(st.Owner))
			require.True(t, slices.ContainsFunc(d.Owners, func(o OwnerState) bool { return o.Owner == st.Owner }))
		}
	})
}

func FuzzDecodeOwnerState(f *testing.F) {
	h := fuzzHistory()
	s := populate(newReplica("r"), h)
	for _, name := range s.Owners() {
		st, _ := s.OwnerState(name)
		f.Add(AppendOwnerState(nil, &st))
	}
	for _, p := range h.points {
		for i := range p.Owners {
			f.Add(AppendOwnerState(nil, &p.Owners[i]))
		}
	}
	for _, e := range h.events {
		if e.state != nil {
			f.Add(AppendOwnerState(nil, e.state))
		}
	}
	f.Add(AppendOwnerState(nil, &OwnerState{Owner: "r", Version: Version{9, 1}, Chain: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeOwnerState(b)
		if err != nil {
			return
		}
		canon := AppendOwnerState(nil, &st)
		again, err := DecodeOwnerState(canon)
		require.NoError(t, err)
		require.Equal(t, st, again)
		require.True(t, bytes.Equal(canon, AppendOwnerState(nil, &again)), "encoding is canonical")

		for _, fresh := range []bool{true, false} {
			l := newListener(t, "r")
			if !fresh {
				populate(l.s, h)
			}
			first := l.s.MergeOwner(&st)
			l.check()
			requireTransmittable(t, l.s)
			before := l.s.Snapshot()
			second := l.s.MergeOwner(&st)
			require.Equal(t, before, l.s.Snapshot(), "merging twice is merging once")
			if first == Applied {
				require.Equal(t, Duplicate, second)
			}
		}
	})
}

func FuzzDecodeSummary(f *testing.F) {
	s := populate(newReplica("r"), fuzzHistory())
	f.Add(AppendSummary(nil, s.Summary()))
	f.Add(AppendSummary(nil, Summary{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		sum, err := DecodeSummary(b)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, sum.Lines, 0)
		canon := AppendSummary(nil, sum)
		again, err := DecodeSummary(canon)
		require.NoError(t, err)
		require.Equal(t, sum, again)
	})
}

func FuzzDecodeBucketHashes(f *testing.F) {
	s := populate(newReplica("r"), fuzzHistory())
	f.Add(AppendBucketHashes(nil, s.BucketHashes()))
	f.Add(AppendBucketHashes(nil, nil))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		hashes, err := DecodeBucketHashes(b)
		if err != nil {
			return
		}
		require.Len(t, hashes, DigestBuckets)
		require.True(t, bytes.Equal(b, AppendBucketHashes(nil, hashes)), "encoding is canonical")
	})
}

func FuzzDecodeDelta(f *testing.F) {
	h := fuzzHistory()
	s := populate(newReplica("r"), h)
	for _, d := range []Delta{s.Snapshot(), {}, h.points[0], h.points[len(h.points)-1]} {
		f.Add(AppendDelta(nil, &d))
	}
	dg := partial(rand.New(rand.NewPCG(3, 3)), "o", h).Digest()
	d := s.Delta(&dg)
	f.Add(AppendDelta(nil, &d))
	f.Fuzz(func(t *testing.T, b []byte) {
		dl, err := DecodeDelta(b)
		if err != nil {
			return
		}
		canon := AppendDelta(nil, &dl)
		again, err := DecodeDelta(canon)
		require.NoError(t, err)
		require.Equal(t, dl, again)
		require.True(t, bytes.Equal(canon, AppendDelta(nil, &again)), "encoding is canonical")

		for _, fresh := range []bool{true, false} {
			l := newListener(t, "r")
			if !fresh {
				populate(l.s, h)
			}
			l.s.Merge(&dl)
			l.check()
			requireTransmittable(t, l.s)
			before := l.s.Snapshot()
			l.s.Merge(&dl)
			require.Equal(t, before, l.s.Snapshot(), "merging twice is merging once")
		}
	})
}
