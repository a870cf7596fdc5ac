package membership

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cpggo/cpg/internal/wire"
)

// Queue bounds of a link. Control frames (HyParView messages, pings and
// pongs) are few and small; payloads are the broadcast layer's traffic.
const (
	controlQueueLen = 64
	dataQueueLen    = 256
)

// link is one authenticated overlay TCP connection to a peer, in either
// direction. A writer goroutine owns the socket's write side (and the dial,
// for a link this node opens); a reader goroutine owns its read side. The
// node's loop decides which link is a peer's primary (the one Send and the
// core's messages use); other links to the same peer only drain and close.
type link struct {
	peer      Peer   // Addr is the one the peer announced in its hello
	initiator string // name of the node that dialed

	control chan []byte // framed HyParView messages, pings, pongs: sent first
	data    chan []byte // framed payloads

	stop     chan struct{} // closed when the link is retired or aborted
	stopOnce sync.Once
	drain    atomic.Bool // on stop, send what is queued before closing

	// established is when the handshake completed (0 while dialing);
	// lastRecv is when the last frame arrived; fullSince is when a payload
	// was first refused for a full queue since the writer last made
	// progress. All are nanoseconds on the node's monotonic clock.
	established atomic.Int64
	lastRecv    atomic.Int64
	fullSince   atomic.Int64
	failed      atomic.Bool // a failure was already reported

	mu      sync.Mutex
	conn    net.Conn
	aborted bool
	rtt     rttEstimator
	pingSeq uint64

	// inactiveSince is owned by the node's loop: when it first saw this
	// primary link to a peer outside the core's active view.
	inactiveSince time.Duration
}

func newLink(peer Peer, initiator string) *link {
	return &link{
		peer:      peer,
		initiator: initiator,
		control:   make(chan []byte, controlQueueLen),
		data:      make(chan []byte, dataQueueLen),
		stop:      make(chan struct{}),
		rtt:       newRTTEstimator(defaultMinRTO, defaultMaxRTO),
	}
}

// attach gives the link its connection once the handshake is done; false
// if the link was aborted meanwhile (the connection is then closed).
func (l *link) attach(conn net.Conn, now time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.aborted {
		conn.Close()
		return false
	}
	l.conn = conn
	l.lastRecv.Store(int64(now))
	l.established.Store(int64(now))
	return true
}

// abort closes the connection at once; queued frames are lost.
func (l *link) abort() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.aborted = true
	if l.conn != nil {
		l.conn.Close()
	}
}

// retire closes the link after the writer sent what is already queued (a
// DISCONNECT, typically). The reader keeps reading until the close.
func (l *link) retire() {
	l.drain.Store(true)
	l.stopOnce.Do(func() { close(l.stop) })
}

func (l *link) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *link) enqueueControl(frame []byte) bool {
	select {
	case l.control <- frame:
		return true
	default:
		return false
	}
}

func (l *link) enqueueData(frame []byte, now time.Duration) bool {
	select {
	case l.data <- frame:
		return true
	default:
		l.fullSince.CompareAndSwap(0, int64(now))
		return false
	}
}

func (l *link) observeRTT(sample time.Duration) {
	l.mu.Lock()
	l.rtt.observe(sample)
	l.mu.Unlock()
}

func (l *link) smoothedRTT() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rtt.smoothed()
}

func (l *link) rto() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rtt.rto()
}

func (l *link) nextPing(now time.Duration) []byte {
	l.mu.Lock()
	l.pingSeq++
	seq := l.pingSeq
	l.mu.Unlock()
	return wire.AppendFrame(nil, framePing, appendHeartbeat(nil, heartbeat{Seq: seq, Sent: int64(now)}))
}

// dialTimeout bounds a TCP connect plus handshake to a peer; on a LAN a
// live peer answers in milliseconds, and a dead one should be replaced soon.
const dialTimeout = 3 * time.Second

// dial opens and authenticates a connection to peer.
func (n *Node) dial(peer Peer, transient bool) (net.Conn, handshakeResult, error) {
	if peer.Addr == "" {
		return nil, handshakeResult{}, fmt.Errorf("membership: dial %s: no overlay address", peer.Name)
	}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.Dial("tcp", peer.Addr)
	if err != nil {
		return nil, handshakeResult{}, fmt.Errorf("membership: dial %s: %w", peer, err)
	}
	res, err := n.hs.dial(conn, peer.Name, transient)
	if err != nil {
		conn.Close()
		return nil, handshakeResult{}, fmt.Errorf("membership: dial %s: %w", peer, err)
	}
	return conn, res, nil
}

// writeLoop owns a link's write side until the link stops or fails. For a
// link this node opens it dials first, so the node's loop never waits on
// the network.
func (n *Node) writeLoop(l *link, conn net.Conn) {
	if conn == nil {
		c, _, err := n.dial(l.peer, false)
		if err != nil {
			n.log.Debug("membership: open link", "peer", l.peer.Name, "err", err)
			n.linkBroken(l, err)
			return
		}
		if !l.attach(c, n.now()) {
			return
		}
		conn = c
		if !n.spawn(func() { n.readLoop(l, conn) }) {
			l.abort()
			return
		}
	}
	// Frames go through a buffer that is flushed whenever both queues are
	// empty: a burst costs one write system call, not one per frame, and
	// a lone frame still leaves at once.
	w := bufio.NewWriterSize(conn, writeBufferSize)
	for {
		frame, ok := l.nextQueued()
		if !ok {
			if w.Buffered() > 0 {
				if err := w.Flush(); err != nil {
					n.linkBroken(l, err)
					return
				}
			}
			select {
			case frame = <-l.control:
			case frame = <-l.data:
				l.fullSince.Store(0)
			case <-l.stop:
				n.finishLink(l, conn)
				return
			}
		}
		if _, err := w.Write(frame); err != nil {
			n.linkBroken(l, err)
			return
		}
	}
}

// The batches a link hands to and takes from the kernel at once.
const (
	writeBufferSize = 64 << 10
	readBufferSize  = 64 << 10
)

// nextQueued returns a queued frame without waiting, control frames first.
func (l *link) nextQueued() ([]byte, bool) {
	select {
	case f := <-l.control:
		return f, true
	default:
	}
	select {
	case f := <-l.control:
		return f, true
	case f := <-l.data:
		l.fullSince.Store(0)
		return f, true
	default:
		return nil, false
	}
}

// finishLink closes a stopped link, first flushing its queues if it was
// retired rather than aborted.
func (n *Node) finishLink(l *link, conn net.Conn) {
	if l.drain.Load() {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		w := bufio.NewWriterSize(conn, writeBufferSize)
		for {
			f, ok := l.nextQueued()
			if !ok {
				_ = w.Flush()
				break
			}
			if _, err := w.Write(f); err != nil {
				break
			}
		}
	}
	l.abort()
	n.forget(l)
}

// readLoop owns a link's read side: HyParView messages and payloads go to
// the node's loop in arrival order, heartbeats are answered here.
func (n *Node) readLoop(l *link, conn net.Conn) {
	r := bufio.NewReaderSize(conn, readBufferSize)
	for {
		typ, body, err := wire.ReadFrame(r, n.cfg.MaxFrame)
		if err != nil {
			n.linkBroken(l, err)
			return
		}
		now := n.now()
		l.lastRecv.Store(int64(now))
		f, err := decodeFrame(typ, body)
		if err != nil {
			n.log.Warn("membership: malformed frame, dropping link", "peer", l.peer.Name, "err", err)
			n.linkBroken(l, err)
			return
		}
		switch typ {
		case framePing:
			l.enqueueControl(wire.AppendFrame(nil, framePong, body))
		case framePong:
			l.observeRTT(now - time.Duration(f.beat.Sent))
		case framePayload:
			if !n.events.reserve(l.stop, n.done) {
				return
			}
			if !n.input(coreInput{kind: inputPayload, peer: l.peer, payload: f.payload}) {
				n.events.release()
				return
			}
		default:
			if !n.input(coreInput{kind: inputMessage, peer: l.peer, msg: f.msg}) {
				return
			}
		}
	}
}

// linkBroken reports a link's failure to the loop, once, unless the link
// was deliberately stopped.
func (n *Node) linkBroken(l *link, err error) {
	stopped := l.stopped()
	l.abort()
	n.forget(l)
	if stopped || !l.failed.CompareAndSwap(false, true) {
		return
	}
	if !errors.Is(err, net.ErrClosed) {
		n.log.Debug("membership: link broken", "peer", l.peer.Name, "err", err)
	}
	n.input(coreInput{kind: inputLinkFailed, peer: l.peer, link: l})
}

// serveConn authenticates an accepted connection, then either reads the
// few frames of a transient connection or makes it a link.
func (n *Node) serveConn(conn net.Conn, handshakeDone func()) {
	res, err := n.hs.accept(conn)
	handshakeDone()
	if err != nil {
		n.log.Warn("membership: refused overlay connection", "remote", conn.RemoteAddr().String(), "err", err)
		conn.Close()
		return
	}
	if res.transient {
		n.readTransient(conn, res.peer)
		return
	}
	l := newLink(res.peer, res.peer.Name)
	if !l.attach(conn, n.now()) || !n.adopt(l) {
		conn.Close()
		return
	}
	if !n.spawn(func() { n.readLoop(l, conn) }) {
		l.abort()
		n.forget(l)
		return
	}
	n.writeLoop(l, conn)
}

// transientIdle bounds how long a transient connection may stay silent: its
// sender writes its frames right after the handshake and closes.
const transientIdle = 5 * time.Second

func (n *Node) readTransient(conn net.Conn, peer Peer) {
	defer conn.Close()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(transientIdle))
		typ, body, err := wire.ReadFrame(conn, n.cfg.MaxFrame)
		if err != nil {
			return
		}
		if classifyFrame(typ) != frameCore {
			n.log.Warn("membership: non-protocol frame on a transient connection", "peer", peer.Name, "type", typ)
			return
		}
		f, err := decodeFrame(typ, body)
		if err != nil {
			n.log.Warn("membership: malformed frame", "peer", peer.Name, "err", err)
			return
		}
		if !n.input(coreInput{kind: inputMessage, peer: peer, msg: f.msg}) {
			return
		}
	}
}

// sendTransient delivers one frame over a short-lived connection; a failure
// is reported to the core with TransientFailed, which leaves a working
// link to the same peer alone.
func (n *Node) sendTransient(to Peer, frame []byte) {
	n.spawn(func() {
		conn, _, err := n.dial(to, true)
		if err == nil {
			_ = conn.SetWriteDeadline(time.Now().Add(dialTimeout))
			_, err = conn.Write(frame)
			conn.Close()
		}
		if err != nil {
			n.log.Debug("membership: transient send", "peer", to.Name, "err", err)
			n.input(coreInput{kind: inputTransientFailed, peer: to})
		}
	})
}

// maxPendingHandshakes bounds the accepted connections still in their
// handshake, so that a flood of connections that never complete one costs
// a bounded number of goroutines; beyond it, new connections are closed.
const maxPendingHandshakes = 64

// acceptLoop serves the overlay listener until it closes.
func (n *Node) acceptLoop() {
	pending := make(chan struct{}, maxPendingHandshakes)
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			return
		}
		select {
		case pending <- struct{}{}:
		default:
			n.log.Warn("membership: too many pending overlay handshakes, closing connection", "remote", conn.RemoteAddr().String())
			conn.Close()
			continue
		}
		if !n.spawn(func() { n.serveConn(conn, func() { <-pending }) }) {
			conn.Close()
			return
		}
	}
}

// adopt registers an accepted link. Two nodes that open links to each other
// at the same moment must keep the same one: the link dialed by the node
// with the lower name wins on both sides. The loser is closed by the node
// that dialed it (after sending what it queued), and read by the other
// until then, so no frame is lost. A newer link from the same dialer
// replaces an older one (the peer reconnected).
func (n *Node) adopt(l *link) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.conns[l] = struct{}{}
	cur := n.links[l.peer.Name]
	if cur == nil || cur.stopped() {
		n.links[l.peer.Name] = l
		return true
	}
	winner := min(n.self.Name, l.peer.Name)
	if cur.initiator == winner && l.initiator != winner {
		return true // l stays a secondary link; the peer will close it
	}
	n.links[l.peer.Name] = l
	if cur.initiator == n.self.Name {
		cur.retire()
	}
	return true
}

// openLink returns the primary link to peer, creating and dialing one if
// there is none. Called by the loop only.
func (n *Node) openLink(peer Peer) *link {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l := n.links[peer.Name]; l != nil && !l.stopped() {
		return l
	}
	if n.closed {
		return nil
	}
	l := newLink(peer, n.self.Name)
	n.links[peer.Name] = l
	n.conns[l] = struct{}{}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.writeLoop(l, nil)
	}()
	return l
}

// forget drops a finished link from the set of open connections.
func (n *Node) forget(l *link) {
	n.mu.Lock()
	delete(n.conns, l)
	n.mu.Unlock()
}
