package registry

import (
	"errors"
	"fmt"
	"time"

	"github.com/cpggo/cpg/crdt"
)

// Meta is a member's metadata: a small string map. The registry never
// modifies a Meta it stores or returns; callers must not either.
type Meta = crdt.Meta

// Limits on a member's metadata (keys and values together).
const (
	MaxMetaEntries = crdt.MaxMetaEntries
	MaxMetaBytes   = crdt.MaxMetaBytes
	// MaxMemberLen bounds a member ID, in bytes.
	MaxMemberLen = crdt.MaxNameLen
)

// Member is one member of a group as a lookup returns it. The slices of
// Members that lookups return are shared and must not be modified.
type Member struct {
	// ID names the member; it is unique per node (the same ID on two nodes
	// is two members).
	ID string
	// Node is the name of the node that owns the member.
	Node string
	// Count is how many times the member joined the group and has not left.
	Count int
	// Joined is when the member first joined (Unix nanoseconds, by its
	// node's clock): the same on every node, which makes the oldest and
	// newest picks agree everywhere.
	Joined int64
	// Meta is the member's metadata, nil if it has none.
	Meta Meta
}

// JoinTime returns Joined as a time.Time.
func (m Member) JoinTime() time.Time { return time.Unix(0, m.Joined) }

var (
	// ErrNoSuchGroup: no stored group or pattern matches the name.
	ErrNoSuchGroup = errors.New("registry: no such group")
	// ErrNoMember: the group has no member the pick may choose.
	ErrNoMember = errors.New("registry: no eligible member")
	// ErrNotMember: a leave or metadata update for a member this node does
	// not hold in that group.
	ErrNotMember = crdt.ErrNotMember
	// ErrInvalidMember: an empty or over-long member ID, or metadata over
	// the limits.
	ErrInvalidMember = errors.New("registry: invalid member")
	// ErrInvalidScope: an empty or over-long scope name.
	ErrInvalidScope = errors.New("registry: invalid scope name")
	// ErrClosed: the node was closed.
	ErrClosed = errors.New("registry: node closed")
)

func validateMember(id string, meta Meta) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty member ID", ErrInvalidMember)
	case len(id) > MaxMemberLen:
		return fmt.Errorf("%w: member ID of %d bytes, more than %d", ErrInvalidMember, len(id), MaxMemberLen)
	}
	if err := crdt.ValidateMeta(meta); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidMember, id, err)
	}
	return nil
}

func validateScope(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidScope)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidScope, len(name), MaxNameLen)
	}
	return nil
}
