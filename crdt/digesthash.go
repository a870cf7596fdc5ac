package crdt

import (
	"slices"
)

// digestHashes keeps the fingerprints of a replica's digest current as its
// lines change, so that reading them costs O(1) (the whole digest) or
// O(DigestBuckets), never O(owners). A fingerprint is the sum of its lines'
// hashes: adding or removing a line is one addition, and the sum does not
// depend on the order lines were added in.
type digestHashes struct {
	sum     uint64
	lines   int
	buckets [DigestBuckets]uint64
	// names holds, per bucket, every name with an owner record or a
	// tombstone, sorted, so a bucket's lines are found without a scan of
	// all owners. A sorted slice costs a string header a name where a map
	// per bucket cost a few hundred bytes a replica and owner.
	names [DigestBuckets][]string
}

func (d *digestHashes) add(bucket int, h uint64) {
	d.sum += h
	d.lines++
	d.buckets[bucket] += h
}

func (d *digestHashes) remove(bucket int, h uint64) {
	d.sum -= h
	d.lines--
	d.buckets[bucket] -= h
}

func (d *digestHashes) addName(name string) {
	b := Bucket(name)
	if i, found := slices.BinarySearch(d.names[b], name); !found {
		d.names[b] = slices.Insert(d.names[b], i, name)
	}
}

func (d *digestHashes) removeName(name string) {
	b := Bucket(name)
	if i, found := slices.BinarySearch(d.names[b], name); found {
		d.names[b] = slices.Delete(d.names[b], i, i+1)
		if len(d.names[b]) == 0 {
			d.names[b] = nil
		}
	}
}

// namesIn returns the names with a record in the given buckets, sorted;
// buckets out of range are ignored, and a bucket named twice counts once.
func (d *digestHashes) namesIn(buckets []int) []string {
	var out []string
	var seen [DigestBuckets]bool
	for _, b := range buckets {
		if b < 0 || b >= DigestBuckets || seen[b] {
			continue
		}
		seen[b] = true
		out = append(out, d.names[b]...)
	}
	slices.Sort(out)
	return out
}

// Summary is the O(1) fingerprint of a digest: peers whose summaries are
// equal hold the same owner versions, chains and tombstones (up to a 2^-64
// accident).
type Summary struct {
	Hash  uint64
	Lines int
}

// Summary returns this replica's digest fingerprint.
func (s *State) Summary() Summary { return Summary{Hash: s.digest.sum, Lines: s.digest.lines} }

// BucketHashes returns the fingerprint of each of the DigestBuckets buckets
// of the digest (owners go to bucket Bucket(owner)); a fresh slice.
func (s *State) BucketHashes() []uint64 { return slices.Clone(s.digest.buckets[:]) }

// allBuckets lists every bucket, for the unrestricted Digest and Delta.
var allBuckets = func() []int {
	bs := make([]int, DigestBuckets)
	for i := range bs {
		bs[i] = i
	}
	return bs
}()
