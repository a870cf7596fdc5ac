package crdt

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// replicaOf returns a replica holding owners owners with one member each,
// and a tombstone for every tenth.
func replicaOf(tb testing.TB, owners int) *State {
	s := newReplica("r")
	for i := range owners {
		op := Op{Owner: fmt.Sprintf("node-%05d", i), Incarnation: 1_700_000_000_000_000_000, Seq: 1, Kind: Join,
			Scope: "default", Group: "/svc/api", Member: "api-1", Count: 1, Time: int64(i)}
		require.Equal(tb, Applied, s.Apply(&op))
		if i%10 == 0 {
			s.Tombstone(fmt.Sprintf("gone-%05d", i), 7, 0)
		}
	}
	return s
}

// go test -run '^$' -bench 'Summary|BucketHashes' ./crdt/
func BenchmarkSummary10kOwners(b *testing.B) {
	s := replicaOf(b, 10_000)
	b.ResetTimer()
	for b.Loop() {
		_ = s.Summary()
	}
}

func BenchmarkBucketHashes10kOwners(b *testing.B) {
	s := replicaOf(b, 10_000)
	b.ResetTimer()
	for b.Loop() {
		_ = s.BucketHashes()
	}
}

// For contrast: the full digest, which an exchange no longer sends.
func BenchmarkDigest10kOwners(b *testing.B) {
	s := replicaOf(b, 10_000)
	b.ResetTimer()
	for b.Loop() {
		_ = s.Digest()
	}
}

// The bytes a hashed exchange moves at 10,000 owners (and 1,000
// tombstones): a summary when converged; with one owner behind, also the
// bucket hashes and one bucket's digest lines (plus the owner's delta).
// go test -run TestHashedDigestWireSize -v ./crdt/
func TestHashedDigestWireSize(t *testing.T) {
	s := replicaOf(t, 10_000)
	full := s.Digest()
	one := s.DigestOf([]int{Bucket("node-04242")})
	sizes := map[string]int{
		"summary":       len(AppendSummary(nil, s.Summary())),
		"bucket hashes": len(AppendBucketHashes(nil, s.BucketHashes())),
		"one bucket":    len(AppendDigest(nil, &one)),
		"full digest":   len(AppendDigest(nil, &full)),
	}
	t.Logf("at 10,000 owners and 1,000 tombstones: %v (%d lines in the bucket)", sizes, len(one.Owners)+len(one.Tombstones))
	require.Less(t, sizes["summary"], 32)
	require.Less(t, sizes["summary"]+sizes["bucket hashes"]+sizes["one bucket"], 4096, "one owner behind costs under 4 KB plus its delta")
	require.Greater(t, sizes["full digest"], 100*sizes["one bucket"]/2, "a bucket is about 1/256 of the digest")
}

// Applying an op (the chain hash and the digest fingerprints are kept
// current on the way): go test -run '^$' -bench BenchmarkApply ./crdt/
func BenchmarkApply(b *testing.B) {
	s := replicaOf(b, 1_000)
	op := Op{Owner: "node-00042", Incarnation: 1_700_000_000_000_000_000, Seq: 1, Kind: Join,
		Scope: "default", Group: "/solo", Member: "solo-1", Count: 1, Meta: Meta{"zone": "eu"}}
	for b.Loop() {
		op.Seq++
		op.Kind = Join + OpKind(op.Seq%2) // join, leave, join...
		if s.Apply(&op) != Applied {
			b.Fatalf("%v: %v", &op, s.Apply(&op))
		}
	}
}
