package crdt

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/cpggo/cpg/internal/wire"
)

// Limits on what one op may carry. The registry refuses larger input at the
// API; decoders refuse it on the wire, so a hostile peer cannot make a
// replica hold more than a local caller could.
const (
	// MaxNameLen bounds owner, scope, group and member names, in bytes.
	MaxNameLen = 1024
	// MaxMetaEntries bounds the keys of one member's metadata.
	MaxMetaEntries = 32
	// MaxMetaBytes bounds the total size of one member's metadata keys and
	// values.
	MaxMetaBytes = 4096
	// maxListLen bounds the owners, groups, entries and tombstones a digest
	// or delta may declare before it is decoded.
	maxListLen = 1 << 20
)

// ValidateMeta reports an error if meta is over the limits.
func ValidateMeta(meta Meta) error {
	if len(meta) > MaxMetaEntries {
		return fmt.Errorf("crdt: metadata has %d keys, more than %d", len(meta), MaxMetaEntries)
	}
	size := 0
	for k, v := range meta {
		size += len(k) + len(v)
	}
	if size > MaxMetaBytes {
		return fmt.Errorf("crdt: metadata is %d bytes, more than %d", size, MaxMetaBytes)
	}
	return nil
}

// AppendOp appends op's encoding to b.
func AppendOp(b []byte, op *Op) []byte {
	b = wire.AppendString(b, op.Owner)
	b = wire.AppendUvarint(b, op.Incarnation)
	b = wire.AppendUvarint(b, op.Seq)
	b = append(b, byte(op.Kind))
	b = wire.AppendString(b, op.Scope)
	b = wire.AppendString(b, op.Group)
	b = wire.AppendString(b, op.Member)
	b = wire.AppendUvarint(b, uint64(op.Count))
	b = appendMeta(b, op.Meta)
	return wire.AppendVarint(b, op.Time)
}

// DecodeOp decodes one op, refusing anything malformed or over the limits.
func DecodeOp(b []byte) (Op, error) {
	d := wire.NewDecoder(b)
	op := readOp(d)
	if err := d.Finish(); err != nil {
		return Op{}, fmt.Errorf("crdt: decode op: %w", err)
	}
	return op, nil
}

// DecodeOpAfter decodes one op as DecodeOp does, the op after prev in a
// run of one owner's ops (a batch): where its owner, scope or group equals
// prev's, it takes prev's string rather than allocating its own, since the
// ops of a burst mostly share them.
func DecodeOpAfter(b []byte, prev *Op) (Op, error) {
	d := wire.NewDecoder(b)
	op := readOpAfter(d, prev)
	if err := d.Finish(); err != nil {
		return Op{}, fmt.Errorf("crdt: decode op: %w", err)
	}
	return op, nil
}

func readOp(d *wire.Decoder) Op { return readOpAfter(d, nil) }

// readOpAfter reads an op, sharing prev's strings where equal (prev may be
// nil).
func readOpAfter(d *wire.Decoder, prev *Op) Op {
	var like Op
	if prev != nil {
		like = *prev
	}
	var op Op
	op.Owner = stringLike(d, like.Owner)
	op.Incarnation = d.Uvarint()
	op.Seq = d.Uvarint()
	op.Kind = OpKind(d.Byte())
	if d.Err() == nil && (op.Kind < Join || op.Kind > SetMeta) {
		d.Fail(fmt.Errorf("unknown op kind %d", op.Kind))
	}
	if d.Err() == nil && op.Seq == 0 {
		d.Fail(fmt.Errorf("op seq 0"))
	}
	op.Scope = stringLike(d, like.Scope)
	op.Group = stringLike(d, like.Group)
	op.Member = d.String(MaxNameLen)
	op.Count = d.Uint32()
	op.Meta = readMeta(d)
	op.Time = d.Varint()
	return op
}

// stringLike reads a name, returning like itself when the bytes equal it.
func stringLike(d *wire.Decoder, like string) string {
	b := d.Bytes(MaxNameLen)
	if like != "" && string(b) == like {
		return like
	}
	return string(b)
}

func appendMeta(b []byte, m Meta) []byte {
	b = wire.AppendUvarint(b, uint64(len(m)))
	if len(m) == 0 {
		// Most members have none: no key iterator, no sorted copy.
		return b
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = wire.AppendString(b, k)
		b = wire.AppendString(b, m[k])
	}
	return b
}

func readMeta(d *wire.Decoder) Meta {
	n := d.Int(MaxMetaEntries)
	if n == 0 || d.Err() != nil {
		return nil
	}
	m := make(Meta, n)
	size := 0
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.String(MaxMetaBytes)
		v := d.String(MaxMetaBytes)
		size += len(k) + len(v)
		m[k] = v
	}
	if d.Err() == nil {
		if err := ValidateMeta(m); err != nil {
			d.Fail(err)
		} else if len(m) != n {
			d.Fail(fmt.Errorf("duplicate metadata key"))
		}
	}
	return m
}

// AppendDigest appends a digest's encoding to b. Owner lines carry the
// version and chain; tombstone lines only the dead incarnation.
func AppendDigest(b []byte, dg *Digest) []byte {
	b = wire.AppendUvarint(b, uint64(len(dg.Owners)))
	for _, v := range dg.Owners {
		b = wire.AppendString(b, v.Owner)
		b = wire.AppendUvarint(b, v.Incarnation)
		b = wire.AppendUvarint(b, v.Seq)
		b = wire.AppendUvarint(b, v.Chain)
	}
	return appendTombstones(b, dg.Tombstones)
}

// DecodeDigest decodes a digest, refusing lines out of order or repeated.
func DecodeDigest(b []byte) (Digest, error) {
	d := wire.NewDecoder(b)
	var dg Digest
	n := d.Int(maxListLen)
	for i := 0; i < n && d.Err() == nil; i++ {
		ov := OwnerVersion{Owner: d.String(MaxNameLen), Version: Version{d.Uvarint(), d.Uvarint()}, Chain: d.Uvarint()}
		if d.Err() == nil && i > 0 && dg.Owners[i-1].Owner >= ov.Owner {
			d.Fail(fmt.Errorf("digest owners not sorted at %q", ov.Owner))
		}
		dg.Owners = append(dg.Owners, ov)
	}
	dg.Tombstones = readTombstones(d)
	if err := d.Finish(); err != nil {
		return Digest{}, fmt.Errorf("crdt: decode digest: %w", err)
	}
	return dg, nil
}

func appendTombstones(b []byte, vs []OwnerVersion) []byte {
	b = wire.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = wire.AppendString(b, v.Owner)
		b = wire.AppendUvarint(b, v.Incarnation)
	}
	return b
}

func readTombstones(d *wire.Decoder) []OwnerVersion {
	n := d.Int(maxListLen)
	var vs []OwnerVersion
	for i := 0; i < n && d.Err() == nil; i++ {
		ov := OwnerVersion{Owner: d.String(MaxNameLen), Version: Version{Incarnation: d.Uvarint()}}
		if d.Err() == nil && i > 0 && vs[i-1].Owner >= ov.Owner {
			d.Fail(fmt.Errorf("tombstones not sorted at %q", ov.Owner))
		}
		vs = append(vs, ov)
	}
	return vs
}

// AppendOwnerState appends the encoding of one owner's state to b: what a
// refute or a re-broadcast of an exchange's result carries.
func AppendOwnerState(b []byte, st *OwnerState) []byte {
	b = wire.AppendString(b, st.Owner)
	b = wire.AppendUvarint(b, st.Version.Incarnation)
	b = wire.AppendUvarint(b, st.Version.Seq)
	b = wire.AppendUvarint(b, st.Chain)
	return appendGroups(b, st.Groups)
}

// DecodeOwnerState decodes one owner's state, refusing what Merge must not
// see (see DecodeDelta).
func DecodeOwnerState(b []byte) (OwnerState, error) {
	d := wire.NewDecoder(b)
	st := readOwnerState(d)
	if err := d.Finish(); err != nil {
		return OwnerState{}, fmt.Errorf("crdt: decode owner state: %w", err)
	}
	return st, nil
}

func appendGroups(b []byte, groups []GroupEntries) []byte {
	b = wire.AppendUvarint(b, uint64(len(groups)))
	for _, ge := range groups {
		b = wire.AppendString(b, ge.Scope)
		b = wire.AppendString(b, ge.Group)
		b = wire.AppendUvarint(b, uint64(len(ge.Entries)))
		for _, e := range ge.Entries {
			b = wire.AppendString(b, e.Member)
			b = wire.AppendUvarint(b, uint64(e.Count))
			b = wire.AppendVarint(b, e.Joined)
			b = appendMeta(b, e.Meta)
		}
	}
	return b
}

func readOwnerState(d *wire.Decoder) OwnerState {
	st := OwnerState{Owner: d.String(MaxNameLen), Version: Version{d.Uvarint(), d.Uvarint()}, Chain: d.Uvarint()}
	ng := d.Int(maxListLen)
	if d.Err() == nil && st.Version.Seq == 0 && (ng > 0 || st.Chain != 0) {
		// Seq 0 is an incarnation before its first step: nothing to hold.
		d.Fail(fmt.Errorf("owner %q at seq 0 with entries or a chain", st.Owner))
	}
	for j := 0; j < ng && d.Err() == nil; j++ {
		ge := GroupEntries{Scope: d.String(MaxNameLen), Group: d.String(MaxNameLen)}
		if d.Err() == nil && j > 0 {
			prev := st.Groups[j-1]
			if prev.Scope > ge.Scope || (prev.Scope == ge.Scope && prev.Group >= ge.Group) {
				d.Fail(fmt.Errorf("groups not sorted at %q/%q", ge.Scope, ge.Group))
			}
		}
		ne := d.Int(maxListLen)
		for k := 0; k < ne && d.Err() == nil; k++ {
			e := Entry{Member: d.String(MaxNameLen), Count: d.Uint32(), Joined: d.Varint(), Meta: readMeta(d)}
			if d.Err() == nil && e.Count == 0 {
				d.Fail(fmt.Errorf("entry %q with count 0", e.Member))
			}
			if d.Err() == nil && k > 0 && ge.Entries[k-1].Member >= e.Member {
				d.Fail(fmt.Errorf("entries not sorted by member at %q", e.Member))
			}
			ge.Entries = append(ge.Entries, e)
		}
		st.Groups = append(st.Groups, ge)
	}
	return st
}

// AppendDelta appends a delta's encoding to b.
func AppendDelta(b []byte, dl *Delta) []byte {
	b = wire.AppendUvarint(b, uint64(len(dl.Owners)))
	for i := range dl.Owners {
		b = AppendOwnerState(b, &dl.Owners[i])
	}
	return appendTombstones(b, dl.Tombstones)
}

// DecodeDelta decodes a delta, refusing entries with a zero count, groups
// and entries out of order or repeated, and entries at seq 0.
func DecodeDelta(b []byte) (Delta, error) {
	d := wire.NewDecoder(b)
	var dl Delta
	n := d.Int(maxListLen)
	for i := 0; i < n && d.Err() == nil; i++ {
		dl.Owners = append(dl.Owners, readOwnerState(d))
	}
	dl.Tombstones = readTombstones(d)
	if err := d.Finish(); err != nil {
		return Delta{}, fmt.Errorf("crdt: decode delta: %w", err)
	}
	return dl, nil
}

// AppendSummary appends a digest summary's encoding to b.
func AppendSummary(b []byte, sum Summary) []byte {
	b = wire.AppendUvarint(b, sum.Hash)
	return wire.AppendUvarint(b, uint64(sum.Lines))
}

// DecodeSummary decodes a digest summary.
func DecodeSummary(b []byte) (Summary, error) {
	d := wire.NewDecoder(b)
	sum := Summary{Hash: d.Uvarint(), Lines: d.Int(2 * maxListLen)}
	if err := d.Finish(); err != nil {
		return Summary{}, fmt.Errorf("crdt: decode summary: %w", err)
	}
	return sum, nil
}

// AppendBucketHashes appends the encoding of DigestBuckets bucket hashes
// (as BucketHashes returns them) to b: 8 bytes each, little-endian, since
// hashes are as long as uvarints get.
func AppendBucketHashes(b []byte, hashes []uint64) []byte {
	for i := range DigestBuckets {
		var h uint64
		if i < len(hashes) {
			h = hashes[i]
		}
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	return b
}

// DecodeBucketHashes decodes DigestBuckets bucket hashes.
func DecodeBucketHashes(b []byte) ([]uint64, error) {
	if len(b) != 8*DigestBuckets {
		return nil, fmt.Errorf("crdt: decode bucket hashes: %d bytes, want %d", len(b), 8*DigestBuckets)
	}
	hashes := make([]uint64, DigestBuckets)
	for i := range hashes {
		hashes[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return hashes, nil
}
