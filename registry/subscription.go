package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cpggo/cpg/crdt"
)

// ErrResume refuses to resume a subscription: the scope's journal no
// longer holds every change since the given point, or never held it (the
// number is from the future, or from before the scope was first watched).
// The reader re-reads the members and subscribes afresh.
var ErrResume = errors.New("registry: cannot resume the watch")

// SubscribeOptions says where a Subscription starts.
type SubscribeOptions struct {
	// Resume starts the subscription right after the change numbered After
	// (a Record's Seq, or a Subscription's Position), so that a reader that
	// lost its connection misses nothing and sees nothing twice. Without
	// it, the subscription starts now.
	Resume bool
	After  uint64
	// Snapshot takes the current members of every group the filter
	// selects, atomically with the start: the subscription then delivers
	// exactly the changes made after the snapshot. Not with Resume.
	Snapshot bool
}

// Subscription follows the changes of a scope's groups that its filter
// selects, through the scope's journal: a bounded ring of recent changes
// that every subscription of the scope shares. A change costs the same
// whatever the number of subscriptions; a subscription costs a cursor.
// Read with Next when Ready says there may be something to read.
//
// A Subscription is for one reader goroutine at a time.
type Subscription struct {
	j        *journal
	ws       *waitSet
	filter   string
	snapshot []Group
	start    uint64
	// cursor is the sequence number of the last change read; only the
	// reader touches it.
	cursor uint64

	// Guarded by j.mu.
	done bool
	err  error
}

// Subscribe follows the joins, leaves and metadata changes of the groups
// the filter selects (the group of that exact name, and, if the filter is
// a pattern, every group whose name it matches), from now, from a snapshot
// or from a past change (opts). The node keeps Config.WatchBuffer recent
// changes of each watched scope: a reader that falls further behind
// overflows, and a resume from further back fails with ErrResume. A slow
// reader never blocks changes.
func (s *Scope) Subscribe(filter string, opts SubscribeOptions) (*Subscription, error) {
	if err := validateGroupName(filter); err != nil {
		return nil, err
	}
	if opts.Resume && opts.Snapshot {
		return nil, errors.New("registry: a subscription resumes or starts from a snapshot, not both")
	}
	n := s.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	j := s.idx.journal
	if j == nil {
		j = newJournal(n.cfg.WatchBuffer, n.seq)
		s.idx.journal = j
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	start := n.seq
	if opts.Resume {
		switch {
		case opts.After > n.seq:
			return nil, fmt.Errorf("%w: change %d is not known here (the latest is %d)", ErrResume, opts.After, n.seq)
		case opts.After < j.floor:
			return nil, fmt.Errorf("%w: changes of scope %q after %d are no longer kept (the oldest kept follows %d)", ErrResume, s.idx.name, opts.After, j.floor)
		}
		start = opts.After
	}
	sub := &Subscription{j: j, ws: j.join(filter), filter: filter, start: start, cursor: start}
	if opts.Snapshot {
		sub.snapshot = n.groupsMatchingLocked(s.idx.name, filter)
	}
	return sub, nil
}

// groupsMatchingLocked returns the current members of every stored group
// of the scope the filter selects, by group name; n.mu is held.
func (n *Node) groupsMatchingLocked(scope, filter string) []Group {
	var out []Group
	n.state.Groups(scope, func(g *crdt.Group) {
		if watchMatches(filter, g.Name) {
			if members := g.Members(); len(members) > 0 {
				out = append(out, Group{Name: g.Name, Members: members})
			}
		}
	})
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Snapshot returns the groups and members taken at the start when
// SubscribeOptions.Snapshot was set (nil otherwise). The slices are shared
// and must not be modified.
func (s *Subscription) Snapshot() []Group { return s.snapshot }

// Start returns the sequence number the subscription started after: the
// snapshot's position, the resume point, or the latest change at the time
// it was made. Resuming after it misses nothing since.
func (s *Subscription) Start() uint64 { return s.start }

// Ready returns a channel that is closed when Next may have something to
// return: a matching change, the end of the node or an overflow. It
// allocates nothing and wakes nobody when changes no one waits for arrive.
func (s *Subscription) Ready() <-chan struct{} {
	j := s.j
	if j.last.Load() > s.cursor {
		return closedChan
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if s.done || j.closed || j.last.Load() > s.cursor {
		return closedChan
	}
	s.ws.armed = true
	return s.ws.wake
}

// Next appends to dst every change the subscription has not read yet, in
// the order the node applied them, and returns it; it never blocks. Once
// the subscription ends, Next returns the reason: ErrWatchOverflow if
// changes it had not read fell out of the journal (nothing is returned
// then: the reader must re-read the members), ErrClosed after the last
// change once the node closed, ErrSubscriptionClosed after Close. The
// records are shared and must not be modified.
func (s *Subscription) Next(dst []*Record) ([]*Record, error) {
	j := s.j
	j.mu.Lock()
	if s.done {
		j.mu.Unlock()
		return dst, s.err
	}
	if s.ws.lost > s.cursor {
		s.endLocked(fmt.Errorf("%w: a change it had not read (number %d) left the scope's journal of %d changes", ErrWatchOverflow, s.ws.lost, j.size))
		j.mu.Unlock()
		return dst, s.err
	}
	// Copy the unread records' pointers and let appends go on; filter
	// after, without the lock.
	before := len(dst)
	if from := j.at(s.cursor); from < len(j.ring) {
		first := (j.oldest + from) % len(j.ring)
		if first >= j.oldest {
			dst = append(dst, j.ring[first:]...)
			dst = append(dst, j.ring[:j.oldest]...)
		} else {
			dst = append(dst, j.ring[first:j.oldest]...)
		}
	}
	if last := j.last.Load(); last > s.cursor {
		s.cursor = last
	}
	closed := j.closed
	j.mu.Unlock()

	kept := dst[:before]
	for _, r := range dst[before:] {
		if watchMatches(s.filter, r.Group) {
			kept = append(kept, r)
		}
	}
	clear(dst[len(kept):])
	dst = kept
	if len(dst) == before && closed {
		j.mu.Lock()
		defer j.mu.Unlock()
		if !s.done {
			s.endLocked(ErrClosed)
		}
		return dst, s.err
	}
	return dst, nil
}

// ErrSubscriptionClosed is what Next returns after Close.
var ErrSubscriptionClosed = errors.New("registry: subscription closed")

// Position returns the sequence number of the last change Next went past:
// resuming after it misses nothing Next has not returned.
func (s *Subscription) Position() uint64 { return s.cursor }

// Close ends the subscription; closing an ended one does nothing.
func (s *Subscription) Close() {
	s.j.mu.Lock()
	defer s.j.mu.Unlock()
	if !s.done {
		s.endLocked(ErrSubscriptionClosed)
	}
}

func (s *Subscription) endLocked(err error) {
	s.done = true
	s.err = err
	s.j.leave(s.ws)
}
