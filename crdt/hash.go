package crdt

import "slices"

// The hashes here are part of the protocol: two replicas compare them, so
// they must be the same on every node and every build. They are FNV-1a
// (64 bit) finished with a 64-bit avalanche mix, so that nearby inputs (two
// sequence numbers, two owner names that differ in one byte) spread over
// the whole word, which the sums of line hashes and the bucket of an owner
// rely on. They detect accidents (lost or reordered state, a reused
// incarnation), not adversaries.

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvUint64(h, v uint64) uint64 {
	for range 8 {
		h ^= v & 0xff
		h *= fnvPrime
		v >>= 8
	}
	return h
}

// avalanche is the 64-bit finaliser of MurmurHash3.
func avalanche(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// chainNext extends an owner's chain hash by one step, given the step's
// encoding (the whole state a refute announces).
func chainNext(prev uint64, step []byte) uint64 {
	return avalanche(fnvBytes(fnvUint64(fnvOffset, prev), step))
}

// chainOp extends an owner's chain hash by one op. It hashes every field
// of the op (strings length-prefixed, metadata in key order) without
// encoding it, since it runs for every op applied.
func chainOp(prev uint64, op *Op) uint64 {
	h := fnvUint64(fnvOffset, prev)
	h = fnvField(h, op.Owner)
	h = fnvUint64(h, op.Incarnation)
	h = fnvUint64(h, op.Seq)
	h = fnvUint64(h, uint64(op.Kind))
	h = fnvField(h, op.Scope)
	h = fnvField(h, op.Group)
	h = fnvField(h, op.Member)
	h = fnvUint64(h, uint64(op.Count))
	h = fnvUint64(h, uint64(len(op.Meta)))
	if len(op.Meta) > 0 {
		var buf [MaxMetaEntries]string
		keys := buf[:0]
		for k := range op.Meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			h = fnvField(h, k)
			h = fnvField(h, op.Meta[k])
		}
	}
	return avalanche(fnvUint64(h, uint64(op.Time)))
}

func fnvField(h uint64, s string) uint64 {
	return fnvString(fnvUint64(h, uint64(len(s))), s)
}

// DigestBuckets is the number of buckets owners are hashed into for
// hashed anti-entropy: peers compare one hash of the whole digest, then one
// per bucket, and exchange lines only for the buckets that differ.
const DigestBuckets = 256

// Bucket returns the bucket of an owner name, in [0, DigestBuckets).
func Bucket(owner string) int {
	return int(avalanche(fnvString(fnvOffset, owner)) % DigestBuckets)
}

// Line kinds keep an owner line and a tombstone line with the same numbers
// from hashing alike.
const (
	ownerLineTag     = 'o'
	tombstoneLineTag = 't'
)

func ownerLineHash(owner string, v Version, chain uint64) uint64 {
	h := fnvBytes(fnvOffset, []byte{ownerLineTag})
	h = fnvUint64(h, uint64(len(owner)))
	h = fnvString(h, owner)
	h = fnvUint64(h, v.Incarnation)
	h = fnvUint64(h, v.Seq)
	return avalanche(fnvUint64(h, chain))
}

func tombstoneLineHash(owner string, inc uint64) uint64 {
	h := fnvBytes(fnvOffset, []byte{tombstoneLineTag})
	h = fnvUint64(h, uint64(len(owner)))
	h = fnvString(h, owner)
	return avalanche(fnvUint64(h, inc))
}
