package registry

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/cpggo/cpg/crdt"
)

// ErrWatchOverflow ends a watch whose reader fell behind: changes it had
// not read left the scope's journal. Events are never dropped silently:
// the watch ends instead, and the reader re-reads the state and watches
// again.
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
	// Applied is when this node applied the change, by its clock: lookups
	// on this node have shown it since. Zero for a snapshot's members.
	Applied time.Time
}

// defaultWatchChannel is the channel capacity of a watch made with a
// buffer of 0.
const defaultWatchChannel = 64

// Watch delivers the joins and leaves of the groups matching its filter,
// from the moment it was created, in the order each owner made them, on a
// channel. It is a Subscription with a goroutine that moves its changes to
// the channel.
type Watch struct {
	sub   *Subscription
	scope string
	ch    chan Event
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	errMu sync.Mutex
	err   error
}

// Watch subscribes to the joins, leaves and metadata changes of the groups
// the filter selects: the group of that exact name, and, if the filter is a
// pattern, every group whose name it matches. buffer is the capacity of the
// channel (0 means 64). A watch whose reader falls further behind than the
// scope's journal keeps (Config.WatchBuffer changes) ends with
// EventOverflow. A slow reader never blocks joins.
func (s *Scope) Watch(filter string, buffer int) (*Watch, error) {
	sub, err := s.Subscribe(filter, SubscribeOptions{})
	if err != nil {
		return nil, err
	}
	if buffer <= 0 {
		buffer = defaultWatchChannel
	}
	w := &Watch{
		sub: sub, scope: s.idx.name, ch: make(chan Event, buffer),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go w.pump()
	return w, nil
}

// pump moves the subscription's changes to the channel until the
// subscription ends or Close.
func (w *Watch) pump() {
	defer close(w.done)
	defer close(w.ch)
	defer w.sub.Close()
	var batch []*Record
	for {
		select {
		case <-w.sub.Ready():
		case <-w.stop:
			return
		}
		var err error
		batch, err = w.sub.Next(batch[:0])
		for _, r := range batch {
			// A send to a channel with room needs no select over stop:
			// the bursts a watch exists for cost one channel operation
			// per event.
			select {
			case w.ch <- r.Event:
				continue
			default:
			}
			select {
			case w.ch <- r.Event:
			case <-w.stop:
				return
			}
		}
		clear(batch) // the journal may drop these records now
		if err == nil {
			continue
		}
		w.errMu.Lock()
		w.err = err
		w.errMu.Unlock()
		if errors.Is(err, ErrWatchOverflow) {
			select {
			case w.ch <- Event{Kind: EventOverflow, Scope: w.scope}:
			case <-w.stop:
			}
		}
		return
	}
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
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// record appends a change to the scope's journal; n.mu is held, so every
// subscription sees changes in the order they were applied.
func (n *Node) record(x *scopeIndex, c *crdt.Change) {
	if len(n.records) == 0 {
		// Records are allocated recordsPerAlloc at a time: a burst of
		// changes makes one allocation per slab, not one per change. A
		// slab lives while any of its records does; journals drop
		// records oldest first, so that is about one slab more per
		// journal than the records themselves.
		n.records = make([]Record, recordsPerAlloc)
	}
	r := &n.records[0]
	n.records = n.records[1:]
	*r = Record{Seq: n.seq, Event: Event{
		Scope: x.name,
		Group: c.Group.Name,
		Member: Member{
			ID: c.Entry.Member, Node: c.Owner, Count: c.Entry.Count,
			Joined: c.Entry.Joined, Meta: c.Entry.Meta,
		},
	}}
	switch c.Kind {
	case crdt.Joined:
		r.Kind = EventJoin
	case crdt.Left:
		r.Kind = EventLeave
	case crdt.MetaChanged:
		r.Kind = EventMeta
	}
	if n.merging {
		n.held = append(n.held, heldRecord{x.journal, r})
		return
	}
	r.Applied = n.cfg.Now()
	x.journal.append(r)
}

// heldRecord is a record of a batch being merged, and its journal.
type heldRecord struct {
	j *journal
	r *Record
}

// holdRecords starts a batch received from a peer; releaseRecords ends
// it. Its changes become visible to lookups together, when n.mu is
// released after the batch, so its records reach the journals together
// too, all stamped with the end of the batch: a watcher is never told of
// a change a lookup would not show yet, the clock is read once per batch
// rather than once per change, and each journal's lock is taken once per
// run of records rather than once per record. n.mu is held.
func (n *Node) holdRecords() { n.merging = true }

func (n *Node) releaseRecords() {
	n.merging = false
	if len(n.held) == 0 {
		return
	}
	now := n.cfg.Now()
	for i := 0; i < len(n.held); {
		j := n.held[i].j
		k := i
		for k < len(n.held) && n.held[k].j == j {
			n.held[k].r.Applied = now
			k++
		}
		j.appendAll(n.held[i:k])
		i = k
	}
	clear(n.held) // the journals may drop these records later
	n.held = n.held[:0]
}

// recordsPerAlloc is how many records record allocates at once: as many
// as fill 8 KiB, one of the Go allocator's size classes, so that no part
// of a slab is rounding (64 records took a 9,472-byte block).
const recordsPerAlloc = 8192 / int(unsafe.Sizeof(Record{}))
