package registry

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cpggo/cpg/crdt"
)

// ErrWatchOverflow ends a watch whose reader fell behind by more than its
// buffer. Events are never dropped silently: the watch ends instead, and
// the reader re-reads the state and watches again.
var ErrWatchOverflow = errors.New("registry: watch overflowed: the reader fell behind")

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventJoin: a member joined (its Count is the count after the join).
	EventJoin EventKind = iota + 1
	// EventLeave: a member left once (Count after; 0 when it is gone).
	EventLeave
	// EventMeta: a member's metadata changed.
	EventMeta
	// EventOverflow is the last event of a watch whose reader fell behind;
	// the channel closes after it and Err returns ErrWatchOverflow.
	EventOverflow
)

func (k EventKind) String() string {
	switch k {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventMeta:
		return "meta"
	case EventOverflow:
		return "overflow"
	default:
		return fmt.Sprintf("EventKind(%d)", uint8(k))
	}
}

// Event is one change a watch reports.
type Event struct {
	Kind   EventKind
	Scope  string
	Group  string
	Member Member
}

// Watch delivers the joins and leaves of the groups matching its filter,
// from the moment it was created, in the order each owner made them.
type Watch struct {
	filter string
	buffer int
	ch     chan Event
	idx    *scopeIndex
	n      *Node

	// closed and err are written with Node.mu held; errMu lets Err read err
	// without that lock.
	closed bool
	errMu  sync.Mutex
	err    error
}

// Watch subscribes to the joins, leaves and metadata changes of the groups
// the filter selects: the group of that exact name, and, if the filter is a
// pattern, every group whose name it matches. buffer is how many events may
// wait for the reader (0 means the node's default); a watch whose reader
// falls further behind ends with EventOverflow. A slow reader never blocks
// joins.
func (s *Scope) Watch(filter string, buffer int) (*Watch, error) {
	if err := validateGroupName(filter); err != nil {
		return nil, err
	}
	n := s.n
	if buffer <= 0 {
		buffer = n.cfg.WatchBuffer
	}
	// One slot more than the buffer, so the overflow event always fits.
	w := &Watch{filter: filter, buffer: buffer, ch: make(chan Event, buffer+1), idx: s.idx, n: n}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	s.idx.watches = append(s.idx.watches, w)
	return w, nil
}

// Events is the channel of events; it is closed when the watch ends.
func (w *Watch) Events() <-chan Event { return w.ch }

// Err says why the watch ended: nil while it runs or after Close,
// ErrWatchOverflow if the reader fell behind, ErrClosed if the node closed.
func (w *Watch) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// Close ends the watch and closes its channel.
func (w *Watch) Close() {
	w.n.mu.Lock()
	defer w.n.mu.Unlock()
	if w.closed {
		return
	}
	w.closeLocked(nil)
	w.idx.watches = slices.DeleteFunc(w.idx.watches, func(x *Watch) bool { return x == w })
}

func (w *Watch) closeLocked(err error) {
	w.closed = true
	w.errMu.Lock()
	w.err = err
	w.errMu.Unlock()
	close(w.ch)
}

// notify delivers a change to the scope's watches; n.mu is held, so every
// watch sees changes in the order they were applied.
func (n *Node) notify(x *scopeIndex, c *crdt.Change) {
	ev := Event{
		Scope: x.name,
		Group: c.Group.Name,
		Member: Member{
			ID: c.Entry.Member, Node: c.Owner, Count: c.Entry.Count,
			Joined: c.Entry.Joined, Meta: c.Entry.Meta,
		},
	}
	switch c.Kind {
	case crdt.Joined:
		ev.Kind = EventJoin
	case crdt.Left:
		ev.Kind = EventLeave
	case crdt.MetaChanged:
		ev.Kind = EventMeta
	}
	overflowed := false
	for _, w := range x.watches {
		if !watchMatches(w.filter, ev.Group) {
			continue
		}
		if len(w.ch) < w.buffer {
			w.ch <- ev
			continue
		}
		w.ch <- Event{Kind: EventOverflow, Scope: x.name, Group: ev.Group}
		w.closeLocked(ErrWatchOverflow)
		overflowed = true
	}
	if overflowed {
		x.watches = slices.DeleteFunc(x.watches, func(w *Watch) bool { return w.closed })
	}
}
