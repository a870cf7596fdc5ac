package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/internal/wire"
)

// A payload's first byte says what follows.
const (
	payloadOp    byte = 1 // one op (crdt.AppendOp)
	payloadState byte = 2 // one owner's whole state (crdt.AppendOwnerState)
	payloadBatch byte = 3 // consecutive ops of one owner: count, then each op
	payloadDeath byte = 4 // a tombstone: owner, dead incarnation
	payloadRun   byte = 5 // consecutive ops of one owner, each by what differs from the one before (crdt.AppendRunOp)
)

// MaxBatchOps bounds the ops of one batch or run payload; Batches cuts a
// longer run into several.
const MaxBatchOps = 1024

var errEmptyPayload = errors.New("replication: empty payload")

// OpPayload is the broadcast payload of one op.
func OpPayload(op *crdt.Op) []byte {
	return crdt.AppendOp([]byte{payloadOp}, op)
}

// StatePayload is the broadcast payload of one owner's whole state.
func StatePayload(st *crdt.OwnerState) []byte {
	return crdt.AppendOwnerState([]byte{payloadState}, st)
}

// BatchPayload is the broadcast payload of consecutive ops of one owner
// (the caller checks they are) as each op's own encoding: what Batches
// made before runs, which replicas still take from nodes that send it.
func BatchPayload(ops []crdt.Op) []byte {
	var body []byte
	for i := range ops {
		body = wire.AppendBytes(body, crdt.AppendOp(nil, &ops[i]))
	}
	return batchPayloadOf(len(ops), body)
}

// batchPayloadOf is the batch payload of count ops whose encodings, each
// with its length, are body.
func batchPayloadOf(count int, body []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(body))
	b = wire.AppendUvarint(append(b, payloadBatch), uint64(count))
	return append(b, body...)
}

// runPayloadOf is the run payload of ops, whose encodings one after the
// other (crdt.AppendRunOp) are body.
func runPayloadOf(ops []crdt.Op, body []byte) []byte {
	b := make([]byte, 0, 1+len(ops[0].Owner)+4*binary.MaxVarintLen64+len(body))
	b = crdt.AppendRunHeader(append(b, payloadRun), &ops[0], len(ops))
	return append(b, body...)
}

// DeathPayload is the broadcast payload of a tombstone: owner is dead up to
// incarnation inc.
func DeathPayload(owner string, inc uint64) []byte {
	b := wire.AppendString([]byte{payloadDeath}, owner)
	return wire.AppendUvarint(b, inc)
}

// DeathID is the broadcast id of a tombstone: its owner and incarnation,
// with a seq no op reaches, so that an op id never equals it.
func DeathID(owner string, inc uint64) []byte {
	return MessageID(owner, crdt.Version{Incarnation: inc, Seq: deathSeq})
}

// deathSeq is the seq of a tombstone's id.
const deathSeq = math.MaxUint64

// decoded is a payload taken apart: exactly one of ops, state and death is
// set.
type decoded struct {
	ops   []crdt.Op
	state *crdt.OwnerState
	death *crdt.OwnerVersion
}

// decodePayload takes a payload apart; the ops of an op or a batch are
// appended to ops[:0], so that a caller that keeps the slice between
// payloads decodes each batch without allocating one.
func decodePayload(b []byte, ops []crdt.Op) (decoded, error) {
	if len(b) == 0 {
		return decoded{}, errEmptyPayload
	}
	switch b[0] {
	case payloadOp:
		op, err := crdt.DecodeOp(b[1:])
		if err != nil {
			return decoded{}, err
		}
		return decoded{ops: append(ops[:0], op)}, nil
	case payloadBatch:
		return decodeBatch(b[1:], ops)
	case payloadRun:
		ops, err := crdt.DecodeRun(b[1:], ops, MaxBatchOps)
		if err != nil {
			return decoded{}, err
		}
		return decoded{ops: ops}, nil
	case payloadDeath:
		d := wire.NewDecoder(b[1:])
		death := crdt.OwnerVersion{Owner: d.String(crdt.MaxNameLen)}
		death.Incarnation = d.Uvarint()
		if err := d.Finish(); err != nil {
			return decoded{}, err
		}
		if death.Owner == "" {
			return decoded{}, errors.New("replication: tombstone without owner")
		}
		return decoded{death: &death}, nil
	case payloadState:
		st, err := crdt.DecodeOwnerState(b[1:])
		if err != nil {
			return decoded{}, err
		}
		return decoded{state: &st}, nil
	}
	return decoded{}, fmt.Errorf("replication: unknown payload kind %d", b[0])
}

// decodeBatch reads a batch, into ops[:0]: ops of one owner and
// incarnation with consecutive seqs.
func decodeBatch(b []byte, ops []crdt.Op) (decoded, error) {
	d := wire.NewDecoder(b)
	n := d.Int(MaxBatchOps)
	if d.Err() == nil && n == 0 {
		return decoded{}, errors.New("replication: empty batch")
	}
	ops = slices.Grow(ops[:0], n)
	var prev *crdt.Op
	for i := 0; i < n && d.Err() == nil; i++ {
		op, err := crdt.DecodeOpAfter(d.Bytes(len(b)), prev)
		if d.Err() != nil {
			break
		}
		if err != nil {
			return decoded{}, err
		}
		if i > 0 && (op.Owner != ops[0].Owner || op.Incarnation != ops[0].Incarnation || op.Seq != ops[i-1].Seq+1) {
			return decoded{}, errors.New("replication: batch ops are not consecutive ops of one owner")
		}
		ops = append(ops, op)
		prev = &ops[len(ops)-1]
	}
	if err := d.Finish(); err != nil {
		return decoded{}, err
	}
	return decoded{ops: ops}, nil
}

// owner and version of the payload, which its id must name: for ops, the
// last one's.
func (p decoded) owner() (string, crdt.Version) {
	switch {
	case p.ops != nil:
		last := &p.ops[len(p.ops)-1]
		return last.Owner, last.Version()
	case p.death != nil:
		return p.death.Owner, crdt.Version{Incarnation: p.death.Incarnation, Seq: deathSeq}
	}
	return p.state.Owner, p.state.Version
}
