package membership

import (
	"sort"
	"sync"
	"time"
)

// NodeStatus is what this node believes about another node of the cluster.
type NodeStatus int

const (
	// StatusAlive: memberlist counts the node as a member.
	StatusAlive NodeStatus = iota + 1
	// StatusSuspect: this node's own evidence (an overlay link to it timed
	// out or broke) says it may be gone, but memberlist has not ruled yet.
	// A successful memberlist probe or a new overlay link clears it.
	StatusSuspect
	// StatusDead: memberlist declared the node failed.
	StatusDead
	// StatusLeft: the node left the cluster on purpose (Close).
	StatusLeft
)

func (s NodeStatus) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusSuspect:
		return "suspect"
	case StatusDead:
		return "dead"
	case StatusLeft:
		return "left"
	default:
		return "unknown"
	}
}

// NodeInfo describes one node as this node knows it.
type NodeInfo struct {
	Name     string
	Addr     string // overlay TCP address
	HTTPAddr string // from the node's metadata; empty if it has none
	// Incarnation is the node's registry incarnation from its metadata;
	// 0 if it has none.
	Incarnation uint64
	GossipAddr  string // memberlist address
	Status      NodeStatus
	RTT         time.Duration // smoothed RTT of our overlay link to it, else memberlist's last probe RTT; 0 if unknown
}

// StatusEvent reports a change of a node's status.
type StatusEvent struct {
	NodeInfo
	Previous NodeStatus // 0 for a node seen for the first time
	At       time.Time
	// Certain is set on a StatusDead this node found itself: its link to
	// the node was closed by the other end and a new connection was
	// refused, so the process is gone (no one listens on its port). It
	// comes before memberlist's verdict, which takes seconds.
	Certain bool
}

// statusBuffer is how many status events wait for a slow subscriber before
// the oldest are dropped: status is a stream of news, and the latest state
// is always available from Members.
const statusBuffer = 256

// statusTable keeps the last known status of every node seen and publishes
// changes. It is written from memberlist's callbacks and from the node's
// loop, so it has its own lock, and it never blocks a writer.
type statusTable struct {
	mu     sync.Mutex
	nodes  map[string]NodeInfo
	out    chan StatusEvent
	closed bool
	now    func() time.Time
	// gone holds the nodes ruled dead on this node's own evidence
	// (confirmGone), which fresh evidence of life overturns.
	gone map[string]bool
}

func newStatusTable() *statusTable {
	return &statusTable{
		nodes: make(map[string]NodeInfo),
		out:   make(chan StatusEvent, statusBuffer),
		now:   time.Now,
	}
}

// set records info and publishes a StatusEvent if the status changed.
// Fields left empty in info keep their previous value, so a caller that only
// knows the status (a link failure) does not erase the addresses.
func (t *statusTable) set(info NodeInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	old, seen := t.nodes[info.Name]
	if seen {
		if info.Addr == "" {
			info.Addr = old.Addr
		}
		if info.HTTPAddr == "" {
			info.HTTPAddr = old.HTTPAddr
		}
		if info.GossipAddr == "" {
			info.GossipAddr = old.GossipAddr
		}
		if info.RTT == 0 {
			info.RTT = old.RTT
		}
		if info.Incarnation == 0 {
			info.Incarnation = old.Incarnation
		}
	}
	t.nodes[info.Name] = info
	delete(t.gone, info.Name)
	if seen && old.Status == info.Status {
		return
	}
	t.publish(StatusEvent{NodeInfo: info, Previous: old.Status, At: t.now()})
}

// confirmGone records that the node's process is certainly gone (see
// StatusEvent.Certain), unless it is already ruled dead or left.
func (t *statusTable) confirmGone(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	info, ok := t.nodes[name]
	if t.closed || !ok || info.Status == StatusDead || info.Status == StatusLeft {
		return
	}
	old := info.Status
	info.Status = StatusDead
	t.nodes[name] = info
	if t.gone == nil {
		t.gone = make(map[string]bool)
	}
	t.gone[name] = true
	t.publish(StatusEvent{NodeInfo: info, Previous: old, At: t.now(), Certain: true})
}

// suspect marks a live node suspect; a node already ruled dead or left, or
// never seen, is left alone (memberlist's verdict wins over our evidence).
func (t *statusTable) suspect(name string) {
	t.mu.Lock()
	info, ok := t.nodes[name]
	t.mu.Unlock()
	if ok && info.Status == StatusAlive {
		info.Status = StatusSuspect
		t.set(info)
	}
}

// clearSuspicion returns a suspect node to alive on fresh evidence of life.
func (t *statusTable) clearSuspicion(name string, rtt time.Duration) {
	t.mu.Lock()
	info, ok := t.nodes[name]
	revive := ok && (info.Status == StatusSuspect || (info.Status == StatusDead && t.gone[name]))
	t.mu.Unlock()
	if revive {
		info.Status = StatusAlive
		info.RTT = rtt
		t.set(info)
	} else if ok && rtt > 0 {
		t.setRTT(name, rtt)
	}
}

func (t *statusTable) setRTT(name string, rtt time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if info, ok := t.nodes[name]; ok {
		info.RTT = rtt
		t.nodes[name] = info
	}
}

// publish sends ev without blocking: when the buffer is full the oldest
// event is dropped to make room. Called with t.mu held, so publishers do not
// race each other for the freed slot.
func (t *statusTable) publish(ev StatusEvent) {
	for {
		select {
		case t.out <- ev:
			return
		default:
		}
		select {
		case <-t.out:
		default:
		}
	}
}

func (t *statusTable) get(name string) (NodeInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	info, ok := t.nodes[name]
	return info, ok
}

// list returns every node seen, by name.
func (t *statusTable) list() []NodeInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]NodeInfo, 0, len(t.nodes))
	for _, info := range t.nodes {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// close ends the stream; later changes are dropped.
func (t *statusTable) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.out)
	}
}
