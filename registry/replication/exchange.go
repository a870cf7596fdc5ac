package replication

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/internal/wire"
)

// Exchange messages, in the order a full exchange sends them. Each starts
// with its kind byte. A pull starts at xLines: the puller already knows
// which bucket it lacks.
const (
	xSummary    byte = 1 // opener: fingerprint of its whole digest
	xBuckets    byte = 2 // peer: the hash of every bucket
	xLines      byte = 3 // opener: its digest lines of the buckets that differ
	xDeltaLines byte = 4 // peer: what the opener lacks, and its own lines
	xDelta      byte = 5 // opener: what the peer lacks
)

// ExchangeStart implements plumtree.Handler: an exchange opens with the
// fingerprint of this replica's digest.
func (r *Replica) ExchangeStart(string) []byte {
	sum := r.st.Summary()
	b := wire.AppendUvarint([]byte{xSummary}, sum.Hash)
	b = wire.AppendUvarint(b, uint64(sum.Lines))
	r.stats.ExchangeBytes += uint64(len(b))
	return b
}

// ExchangeReceive implements plumtree.Handler.
func (r *Replica) ExchangeReceive(_ plumtree.Exchange, data []byte) ([]byte, []plumtree.Action) {
	reply, acts, err := r.exchangeStep(data)
	if err != nil {
		r.stats.Malformed++
		return nil, nil
	}
	r.stats.ExchangeBytes += uint64(len(reply))
	return reply, r.refuteIfClaimed(acts)
}

func (r *Replica) exchangeStep(data []byte) ([]byte, []plumtree.Action, error) {
	if len(data) == 0 {
		return nil, nil, errEmptyPayload
	}
	d := wire.NewDecoder(data[1:])
	switch data[0] {
	case xSummary:
		theirs := crdt.Summary{Hash: d.Uvarint(), Lines: int(d.Uvarint())}
		if err := d.Finish(); err != nil {
			return nil, nil, err
		}
		if theirs == r.st.Summary() {
			return nil, nil, nil
		}
		b := []byte{xBuckets}
		for _, h := range r.st.BucketHashes() {
			b = binary.BigEndian.AppendUint64(b, h)
		}
		return b, nil, nil

	case xBuckets:
		if len(data)-1 != 8*crdt.DigestBuckets {
			return nil, nil, fmt.Errorf("replication: %d bytes of bucket hashes, want %d", len(data)-1, 8*crdt.DigestBuckets)
		}
		var differ []int
		for i, h := range r.st.BucketHashes() {
			if binary.BigEndian.Uint64(data[1+8*i:]) != h {
				differ = append(differ, i)
			}
		}
		if len(differ) == 0 {
			return nil, nil, nil
		}
		return r.linesMessage(xLines, differ), nil, nil

	case xLines:
		buckets := readBuckets(d)
		theirs, err := decodeRest(d, crdt.DecodeDigest)
		if err != nil {
			return nil, nil, err
		}
		delta := r.st.DeltaOf(&theirs, buckets)
		mine := r.st.DigestOf(buckets)
		b := appendBuckets([]byte{xDeltaLines}, buckets)
		b = wire.AppendBytes(b, crdt.AppendDelta(nil, &delta))
		return crdt.AppendDigest(b, &mine), nil, nil

	case xDeltaLines:
		buckets := readBuckets(d)
		deltaBytes := d.Bytes(len(data))
		theirs, err := decodeRest(d, crdt.DecodeDigest)
		if err != nil {
			return nil, nil, err
		}
		delta, err := crdt.DecodeDelta(deltaBytes)
		if err != nil {
			return nil, nil, err
		}
		acts := r.mergeDelta(&delta)
		back := r.st.DeltaOf(&theirs, buckets)
		if back.Empty() {
			return nil, acts, nil
		}
		return crdt.AppendDelta([]byte{xDelta}, &back), acts, nil

	case xDelta:
		delta, err := crdt.DecodeDelta(data[1:])
		if err != nil {
			return nil, nil, err
		}
		return nil, r.mergeDelta(&delta), nil
	}
	return nil, nil, fmt.Errorf("replication: unknown exchange message %d", data[0])
}

// linesMessage is a message of the given kind carrying this replica's
// digest lines of the given buckets.
func (r *Replica) linesMessage(kind byte, buckets []int) []byte {
	lines := r.st.DigestOf(buckets)
	return crdt.AppendDigest(appendBuckets([]byte{kind}, buckets), &lines)
}

// mergeDelta folds in what an exchange brought and passes on, per owner on
// that owner's tree, every owner it moved forward: otherwise what one
// replica learns by exchange stops there, and a heal spreads one exchange
// period per hop.
func (r *Replica) mergeDelta(d *crdt.Delta) []plumtree.Action {
	for _, t := range d.Tombstones {
		r.st.MergeTombstone(t.Owner, t.Incarnation, r.now)
	}
	var acts []plumtree.Action
	for i := range d.Owners {
		if r.count(r.st.MergeOwner(&d.Owners[i])) != plumtree.New {
			continue
		}
		st, ok := r.st.OwnerState(d.Owners[i].Owner)
		if !ok {
			continue
		}
		r.stats.Passed++
		acts = append(acts, plumtree.Action{
			Kind: plumtree.ActBroadcast, Root: st.Owner,
			ID: MessageID(st.Owner, st.Version), Payload: StatePayload(&st),
		})
	}
	return acts
}

func appendBuckets(b []byte, buckets []int) []byte {
	b = wire.AppendUvarint(b, uint64(len(buckets)))
	for _, k := range buckets {
		b = wire.AppendUvarint(b, uint64(k))
	}
	return b
}

// readBuckets reads a list of distinct bucket numbers in ascending order;
// anything else fails the decoder.
func readBuckets(d *wire.Decoder) []int {
	n := d.Int(crdt.DigestBuckets)
	buckets := make([]int, 0, n)
	for range n {
		k := d.Int(crdt.DigestBuckets - 1)
		if len(buckets) > 0 && k <= buckets[len(buckets)-1] {
			d.Fail(fmt.Errorf("replication: bucket list not ascending"))
			return nil
		}
		buckets = append(buckets, k)
	}
	return slices.Clip(buckets)
}

// decodeRest decodes what remains of d with decode.
func decodeRest[T any](d *wire.Decoder, decode func([]byte) (T, error)) (T, error) {
	var zero T
	if err := d.Err(); err != nil {
		return zero, err
	}
	return decode(d.Rest())
}
