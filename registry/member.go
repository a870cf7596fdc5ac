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

// Member is one member of a group as a lookup returns it: its ID, the node
// that owns it, its join count, join time (Unix nanoseconds by its node's
// clock, the same on every node) and metadata. The slices of Members that
// lookups return are shared and must not be modified.
type Member = crdt.Member

// JoinTime returns a member's join time as a time.Time.
func JoinTime(m *Member) time.Time { return time.Unix(0, m.Joined) }

var (
	// ErrNoSuchGroup: no stored group or pattern matches the name.
	ErrNoSuchGroup = errors.New("registry: no such group")
	// ErrNoMember: the group has no member the pick may choose.
	ErrNoMember = errors.New("registry: no eligible member")
	// ErrNotMember: a leave or metadata update for a member this node does
	// not hold in that group.
	ErrNotMember = crdt.ErrNotMember
	// ErrInvalidMember: an empty or over-long member ID, metadata over the
	// limits, or characters no name may hold in either.
	ErrInvalidMember = errors.New("registry: invalid member")
	// ErrInvalidScope: an empty or over-long scope name, or one with
	// characters no name may hold.
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
	if reason := textProblem(id); reason != "" {
		return fmt.Errorf("%w %q: member ID: %s", ErrInvalidMember, id, reason)
	}
	if err := crdt.ValidateMeta(meta); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidMember, id, err)
	}
	for k, v := range meta {
		if reason := textProblem(k); reason != "" {
			return fmt.Errorf("%w %q: metadata key %q: %s", ErrInvalidMember, id, k, reason)
		}
		if reason := textProblem(v); reason != "" {
			return fmt.Errorf("%w %q: metadata value of %q: %s", ErrInvalidMember, id, k, reason)
		}
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
	if reason := textProblem(name); reason != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidScope, name, reason)
	}
	return nil
}
