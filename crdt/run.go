package crdt

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cpggo/cpg/internal/wire"
)

// A run is consecutive ops of one owner and incarnation, seqs one apart:
// what a burst of local changes is. Its encoding states the owner, the
// incarnation and the first seq once, and each op only by what differs
// from the op before it: its kind and flags in one byte, its scope and
// group only when they change, its count only when it is not 1, its
// metadata only when it has some, and its time as the difference from the
// previous op's. An op of a burst into one group takes its member name
// and about four bytes, where AppendOp spends sixty: every copy of a
// batch (encoding, framing, sockets, decoding) moves a fraction of the
// bytes.
//
// A run is AppendRunHeader, then AppendRunOp for each op with the op
// before it.

// The flags byte of a run op: the kind in the low two bits, then which
// optional fields follow.
const (
	runKindMask  = 0x03
	runHasScope  = 1 << 2
	runHasGroup  = 1 << 3
	runHasCount  = 1 << 4
	runHasMeta   = 1 << 5
	runFlagsMask = runKindMask | runHasScope | runHasGroup | runHasCount | runHasMeta
)

// AppendRunHeader appends the header of a run of count ops whose first is
// first.
func AppendRunHeader(b []byte, first *Op, count int) []byte {
	b = wire.AppendString(b, first.Owner)
	b = wire.AppendUvarint(b, first.Incarnation)
	b = wire.AppendUvarint(b, first.Seq)
	return wire.AppendUvarint(b, uint64(count))
}

// AppendRunOp appends op's encoding in a run, after prev (nil for the
// run's first op). The caller keeps the run's ops consecutive: same owner
// and incarnation as prev, the seq after prev's.
func AppendRunOp(b []byte, op, prev *Op) []byte {
	flags := byte(op.Kind) & runKindMask
	var prevTime int64
	if prev == nil {
		flags |= runHasScope | runHasGroup
	} else {
		prevTime = prev.Time
		if op.Scope != prev.Scope {
			flags |= runHasScope
		}
		if op.Group != prev.Group {
			flags |= runHasGroup
		}
	}
	if op.Count != 1 {
		flags |= runHasCount
	}
	if len(op.Meta) > 0 {
		flags |= runHasMeta
	}
	b = append(b, flags)
	if flags&runHasScope != 0 {
		b = wire.AppendString(b, op.Scope)
	}
	if flags&runHasGroup != 0 {
		b = wire.AppendString(b, op.Group)
	}
	b = wire.AppendString(b, op.Member)
	if flags&runHasCount != 0 {
		b = wire.AppendUvarint(b, uint64(op.Count))
	}
	if flags&runHasMeta != 0 {
		b = appendMeta(b, op.Meta)
	}
	// Wrapping subtraction: the decoder's wrapping addition undoes it for
	// any two times.
	return wire.AppendVarint(b, op.Time-prevTime)
}

// DecodeRun decodes a run (header and ops) into ops[:0] and returns them,
// refusing anything malformed, over the limits DecodeOp enforces, or
// longer than maxOps. The ops share their owner, scope and group strings.
func DecodeRun(b []byte, ops []Op, maxOps int) ([]Op, error) {
	d := wire.NewDecoder(b)
	owner := d.String(MaxNameLen)
	inc := d.Uvarint()
	seq := d.Uvarint()
	n := d.Int(maxOps)
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("crdt: decode run: %w", err)
	}
	switch {
	case n == 0:
		return nil, errors.New("crdt: decode run: no ops")
	case seq == 0:
		return nil, errors.New("crdt: decode run: op seq 0")
	case seq > math.MaxUint64-uint64(n-1):
		return nil, errors.New("crdt: decode run: seqs past the largest")
	}
	// Grown as append grows: the runs of a burst grow as it goes on, and
	// a slice of each one's exact length would be replaced at every run.
	ops = slices.Grow(ops[:0], n)
	prev := Op{Owner: owner, Incarnation: inc}
	for i := 0; i < n && d.Err() == nil; i++ {
		flags := d.Byte()
		op := Op{Owner: owner, Incarnation: inc, Seq: seq + uint64(i), Kind: OpKind(flags & runKindMask),
			Scope: prev.Scope, Group: prev.Group, Count: 1}
		if d.Err() != nil {
			break
		}
		if flags&^runFlagsMask != 0 || op.Kind < Join || op.Kind > SetMeta {
			d.Fail(fmt.Errorf("op flags %#x", flags))
			break
		}
		if i == 0 && flags&(runHasScope|runHasGroup) != runHasScope|runHasGroup {
			d.Fail(errors.New("first op without its scope and group"))
			break
		}
		if flags&runHasScope != 0 {
			op.Scope = d.String(MaxNameLen)
		}
		if flags&runHasGroup != 0 {
			op.Group = d.String(MaxNameLen)
		}
		op.Member = d.String(MaxNameLen)
		if flags&runHasCount != 0 {
			op.Count = d.Uint32()
		}
		if flags&runHasMeta != 0 {
			op.Meta = readMeta(d)
			if d.Err() == nil && op.Meta == nil {
				d.Fail(errors.New("metadata flagged but empty"))
			}
		}
		op.Time = prev.Time + d.Varint()
		ops = append(ops, op)
		prev = op
	}
	if err := d.Finish(); err != nil {
		clear(ops)
		return nil, fmt.Errorf("crdt: decode run: %w", err)
	}
	return ops, nil
}
