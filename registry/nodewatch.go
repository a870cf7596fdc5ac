package registry

import (
	"fmt"
	"sync"
	"time"

	"github.com/cpggo/cpg/membership"
)

// NodeEventKind says what a NodeEvent reports: the failure notifications
// of the cluster's failure detector.
type NodeEventKind uint8

const (
	// NodeUp: a node is alive, seen for the first time or back after it
	// was ruled dead or left.
	NodeUp NodeEventKind = iota + 1
	// NodeSuspect: this node's own evidence says the node may be gone.
	NodeSuspect
	// NodeDead: the node was ruled dead.
	NodeDead
	// NodeRefuted: a suspected node proved alive.
	NodeRefuted
	// NodeLeft: the node left the cluster on purpose.
	NodeLeft
	// NodeOverflow is the last event of a node watch whose reader fell
	// behind; the channel closes after it and Err returns ErrWatchOverflow.
	NodeOverflow
)

func (k NodeEventKind) String() string {
	switch k {
	case NodeUp:
		return "up"
	case NodeSuspect:
		return "suspect"
	case NodeDead:
		return "dead"
	case NodeRefuted:
		return "refuted"
	case NodeLeft:
		return "left"
	case NodeOverflow:
		return "overflow"
	default:
		return fmt.Sprintf("NodeEventKind(%d)", uint8(k))
	}
}

// NodeEvent is a change of a cluster node's status, with what this node
// knows of it then (addresses, incarnation, round-trip time).
type NodeEvent struct {
	Kind     NodeEventKind
	Node     membership.NodeInfo
	Previous membership.NodeStatus // 0 for a node seen for the first time
	At       time.Time
}

// nodeEventOf names a status change as a notification.
func nodeEventOf(ev membership.StatusEvent) NodeEvent {
	out := NodeEvent{Node: ev.NodeInfo, Previous: ev.Previous, At: ev.At}
	switch ev.Status {
	case membership.StatusAlive:
		out.Kind = NodeUp
		if ev.Previous == membership.StatusSuspect {
			out.Kind = NodeRefuted
		}
	case membership.StatusSuspect:
		out.Kind = NodeSuspect
	case membership.StatusDead:
		out.Kind = NodeDead
	case membership.StatusLeft:
		out.Kind = NodeLeft
	}
	return out
}

// defaultNodeWatchBuffer is the buffer of a node watch made with 0.
const defaultNodeWatchBuffer = 64

// NodeWatch delivers the status changes of the cluster's nodes (Pulse's
// failure notifications), after a snapshot of the nodes known when it was
// made.
type NodeWatch struct {
	feed   *nodeFeed
	ch     chan NodeEvent
	buffer int
	nodes  []membership.NodeInfo

	// Guarded by feed.mu.
	closed bool
	err    error
}

// nodeFeed hands the failure detector's status changes to the node
// watches. Changes are rare; a reader that lets its buffer fill ends.
type nodeFeed struct {
	mu      sync.Mutex
	watches map[*NodeWatch]struct{}
	closed  bool
}

// WatchNodes watches the status of the cluster's nodes: Nodes returns them
// as the watch starts, and Events every change after (a change may repeat
// a status the snapshot already shows, but none is missed). buffer is how
// many events may wait for the reader (0 means 64); a reader that falls
// further behind gets NodeOverflow and the watch ends. A node on its own
// has no cluster nodes: its watch reports nothing until the node closes.
func (n *Node) WatchNodes(buffer int) (*NodeWatch, error) {
	if buffer <= 0 {
		buffer = defaultNodeWatchBuffer
	}
	// One slot more than the buffer, so the overflow event always fits.
	w := &NodeWatch{feed: &n.nodeFeed, ch: make(chan NodeEvent, buffer+1), buffer: buffer}
	f := &n.nodeFeed
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, ErrClosed
	}
	if f.watches == nil {
		f.watches = make(map[*NodeWatch]struct{})
	}
	f.watches[w] = struct{}{}
	f.mu.Unlock()
	// Read after the watch is registered: a change made meanwhile is then
	// both in the snapshot and on the channel, never in neither.
	w.nodes = n.Nodes()
	return w, nil
}

// Nodes returns the cluster's nodes as they were when the watch started.
func (w *NodeWatch) Nodes() []membership.NodeInfo { return w.nodes }

// Events is the channel of changes; it is closed when the watch ends.
func (w *NodeWatch) Events() <-chan NodeEvent { return w.ch }

// Err says why the watch ended: nil while it runs or after Close,
// ErrWatchOverflow if the reader fell behind, ErrClosed if the node closed.
func (w *NodeWatch) Err() error {
	w.feed.mu.Lock()
	defer w.feed.mu.Unlock()
	return w.err
}

// Close ends the watch and closes its channel.
func (w *NodeWatch) Close() {
	w.feed.mu.Lock()
	defer w.feed.mu.Unlock()
	if !w.closed {
		w.endLocked(nil)
	}
}

func (w *NodeWatch) endLocked(err error) {
	w.closed = true
	w.err = err
	close(w.ch)
	delete(w.feed.watches, w)
}

func (f *nodeFeed) publish(ev NodeEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.watches {
		if len(w.ch) < w.buffer {
			w.ch <- ev
			continue
		}
		w.ch <- NodeEvent{Kind: NodeOverflow, At: ev.At}
		w.endLocked(ErrWatchOverflow)
	}
}

func (f *nodeFeed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for w := range f.watches {
		w.endLocked(ErrClosed)
	}
}
