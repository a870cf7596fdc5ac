package replication

import (
	"errors"
	"fmt"

	"github.com/cpggo/cpg/crdt"
)

// A payload's first byte says what follows.
const (
	payloadOp    byte = 1 // one op (crdt.AppendOp)
	payloadState byte = 2 // one owner's whole state (crdt.AppendOwnerState)
)

var errEmptyPayload = errors.New("replication: empty payload")

// OpPayload is the broadcast payload of one op.
func OpPayload(op *crdt.Op) []byte {
	return crdt.AppendOp([]byte{payloadOp}, op)
}

// StatePayload is the broadcast payload of one owner's whole state.
func StatePayload(st *crdt.OwnerState) []byte {
	return crdt.AppendOwnerState([]byte{payloadState}, st)
}

// decoded is a payload taken apart: exactly one of op and state is set.
type decoded struct {
	op    *crdt.Op
	state *crdt.OwnerState
}

func decodePayload(b []byte) (decoded, error) {
	if len(b) == 0 {
		return decoded{}, errEmptyPayload
	}
	switch b[0] {
	case payloadOp:
		op, err := crdt.DecodeOp(b[1:])
		if err != nil {
			return decoded{}, err
		}
		return decoded{op: &op}, nil
	case payloadState:
		st, err := crdt.DecodeOwnerState(b[1:])
		if err != nil {
			return decoded{}, err
		}
		return decoded{state: &st}, nil
	}
	return decoded{}, fmt.Errorf("replication: unknown payload kind %d", b[0])
}

// owner and version of the payload, which its id must name.
func (p decoded) owner() (string, crdt.Version) {
	if p.op != nil {
		return p.op.Owner, p.op.Version()
	}
	return p.state.Owner, p.state.Version
}
