package replication

import (
	"errors"

	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/internal/wire"
)

// Topic is the Plumtree topic of the registry.
const Topic = "registry"

// MessageID returns the broadcast id of an owner's op (or of its state at
// that version): owner, incarnation and seq.
func MessageID(owner string, v crdt.Version) []byte {
	b := wire.AppendString(make([]byte, 0, len(owner)+12), owner)
	b = wire.AppendUvarint(b, v.Incarnation)
	return wire.AppendUvarint(b, v.Seq)
}

// parseMessageID is MessageID's inverse. It accepts only the form
// MessageID produces (a non-empty owner, minimal varints): replicas key
// what they remember by id bytes, so one op must have one id.
func parseMessageID(id []byte) (owner string, v crdt.Version, err error) {
	d := wire.NewDecoder(id)
	owner = d.String(crdt.MaxNameLen)
	v = crdt.Version{Incarnation: d.Uvarint(), Seq: d.Uvarint()}
	if err := d.Finish(); err != nil {
		return "", crdt.Version{}, err
	}
	if owner == "" || string(MessageID(owner, v)) != string(id) {
		return "", crdt.Version{}, errors.New("replication: message id not in its canonical form")
	}
	return owner, v, nil
}
