package membership

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cpggo/cpg/internal/wire"
)

// Queue bounds of a link's sending side. Control frames (HyParView
// messages, pings and pongs) are few and small; payloads are the broadcast
// layer's traffic, and wait here while the peer has no credit for them.
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
	data    chan []byte // framed payloads, sent as the peer's credit allows
	flow    *flowControl
	// held is a payload the writer took from data and holds until the
	// peer's credit covers it. Owned by the writer.
	held []byte
	// writeMu is held by whoever writes to the socket: the writer from
	// the first frame it takes until its buffer is flushed, or a sender
	// writing its payload itself (writeDirect). unwritten counts the
	// frames queued on the link, or taken by the writer and not yet in its
	// buffer; a sender writes itself only when it is zero, so frames keep
	// their order. rest is the tail of a frame a sender's write left for
	// the writer, guarded by writeMu.
	writeMu   sync.Mutex
	unwritten atomic.Int64
	rest      []byte
	// directWrites counts the payloads senders wrote themselves, and
	// partialWrites those of them whose rest the writer wrote.
	directWrites, partialWrites atomic.Uint64

	stop     chan struct{} // closed when the link is retired or aborted
	stopOnce sync.Once
	drain    atomic.Bool // on stop, send what is queued before closing

	// established is when the handshake completed (0 while dialing);
	// lastRecv is when the last frame arrived; writingSince is when the
	// writer began a socket write that has not returned (0 when it is not
	// in one). All are nanoseconds on the node's monotonic clock.
	established  atomic.Int64
	lastRecv     atomic.Int64
	writingSince atomic.Int64
	failed       atomic.Bool // a failure was already reported
	// superseded: a probe's connection replaced this link after it
	// stalled (revival.go); payloads still read from it are dropped, the
	// consumer having been told the link went down.
	superseded atomic.Bool
	// replacesStale: this accepted link replaced one the peer had given
	// up on (see adopt).
	replacesStale atomic.Bool
	// peerMaxFrame is the largest frame the peer reads, from the
	// handshake; 0 while dialing.
	peerMaxFrame atomic.Int64
	// inLoop counts the frames of this link the reader handed to the
	// node's loop that the loop has not finished with (see readLoop).
	inLoop atomic.Int64

	mu      sync.Mutex
	conn    net.Conn
	aborted bool
	rtt     rttEstimator
	pingSeq uint64

	// inactiveSince is owned by the node's loop: when it first saw this
	// primary link to a peer outside the core's active view.
	inactiveSince time.Duration
}

func newLink(peer Peer, initiator string, window int) *link {
	return &link{
		peer:      peer,
		initiator: initiator,
		control:   make(chan []byte, controlQueueLen),
		data:      make(chan []byte, dataQueueLen),
		flow:      newFlowControl(window),
		stop:      make(chan struct{}),
		rtt:       newRTTEstimator(defaultMinRTO, defaultMaxRTO),
	}
}

// attach gives the link its connection and the peer's limits once the
// handshake is done; false if the link was aborted meanwhile (the
// connection is then closed).
func (l *link) attach(conn net.Conn, res handshakeResult, now time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.aborted {
		conn.Close()
		return false
	}
	l.conn = conn
	l.flow.start(res.peerWindow)
	l.peerMaxFrame.Store(int64(res.peerMaxFrame))
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

// abortReset aborts a stalled link with a TCP reset rather than a FIN: a
// FIN would wait behind the unacknowledged data, and the kernel would go
// on retransmitting frames the peer is told are lost. The reset reaches
// the peer as soon as the path does and ends its side of the link at once.
func (l *link) abortReset() {
	l.mu.Lock()
	if tc, ok := l.conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	l.mu.Unlock()
	l.abort()
}

// stalled reports whether the link's transport is retransmitting data the
// peer has not acknowledged (see transportStalled).
func (l *link) stalled() bool {
	l.mu.Lock()
	conn := l.conn
	l.mu.Unlock()
	return conn != nil && transportStalled(conn)
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
	l.unwritten.Add(1)
	select {
	case l.control <- frame:
		return true
	default:
		l.unwritten.Add(-1)
		return false
	}
}

func (l *link) enqueueData(frame []byte) bool {
	l.unwritten.Add(1)
	select {
	case l.data <- frame:
		return true
	default:
		l.unwritten.Add(-1)
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

// dial opens and authenticates a connection to peer. The connection is
// tracked (Close cuts it); the caller untracks it once a link owns it or it
// is closed.
func (n *Node) dial(peer Peer, transient bool) (net.Conn, handshakeResult, error) {
	if peer.Addr == "" {
		return nil, handshakeResult{}, fmt.Errorf("membership: dial %s: no overlay address", peer.Name)
	}
	conn, err := n.dialAddr(peer.Addr, dialTimeout)
	if err != nil {
		return nil, handshakeResult{}, fmt.Errorf("membership: dial %s: %w", peer, err)
	}
	if !n.trackConn(conn) {
		return nil, handshakeResult{}, fmt.Errorf("membership: dial %s: %w", peer, ErrClosed)
	}
	res, err := n.hs.dial(conn, peer.Name, transient)
	if err != nil {
		n.untrackConn(conn)
		conn.Close()
		return nil, handshakeResult{}, fmt.Errorf("membership: dial %s: %w", peer, err)
	}
	return conn, res, nil
}

// trackConn registers a connection no link owns yet (dialing, in its
// handshake, transient), so that Close cuts it instead of waiting out its
// timeouts; false, and the connection closed, if the node is closing.
func (n *Node) trackConn(conn net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		conn.Close()
		return false
	}
	n.raw[conn] = struct{}{}
	return true
}

func (n *Node) untrackConn(conn net.Conn) {
	n.mu.Lock()
	delete(n.raw, conn)
	n.mu.Unlock()
}

// writeLoop owns a link's write side until the link stops or fails. For a
// link this node opens it dials first, so the node's loop never waits on
// the network.
func (n *Node) writeLoop(l *link, conn net.Conn) {
	if conn == nil {
		c, res, err := n.dial(l.peer, false)
		if err != nil {
			n.log.Debug("membership: open link", "peer", l.peer.Name, "err", err)
			n.linkBroken(l, err)
			return
		}
		attached := l.attach(c, res, n.now())
		n.untrackConn(c)
		if !attached {
			return
		}
		conn = c
		if !n.spawn(func() { n.readLoop(l, conn) }) {
			l.abort()
			return
		}
	}
	// Frames go through a buffer that is flushed whenever nothing is
	// ready to send: a burst costs one write system call, not one per
	// frame, and a lone frame still leaves at once.
	w := bufio.NewWriterSize(conn, writeBufferSize)
	var waited []byte // a control frame the wait took
	for {
		l.writeMu.Lock()
		err := n.writeReady(l, w, waited)
		l.writeMu.Unlock()
		waited = nil
		if err != nil {
			n.linkBroken(l, err)
			return
		}
		var data chan []byte
		if l.held == nil {
			data = l.data
		}
		select {
		case waited = <-l.control:
		case l.held = <-data:
		case <-l.flow.wake:
		case <-l.stop:
			n.finishLink(l, conn)
			return
		}
	}
}

// writeReady writes first (a control frame, when not nil) and then every
// frame ready to send into w, and flushes w. writeMu is held throughout,
// from the first frame taken until the flush, so a sender's own write
// (writeDirect) never lands between two parts of a frame, and a frame
// leaves the link's unwritten count as soon as it is in w.
func (n *Node) writeReady(l *link, w *bufio.Writer, first []byte) error {
	frame, queued, ok := first, true, first != nil
	if !ok {
		frame, queued, ok = n.nextQueued(l)
	}
	for ok {
		if err := n.timedWrite(l, func() error { _, err := w.Write(frame); return err }); err != nil {
			return err
		}
		if queued {
			l.unwritten.Add(-1)
		}
		frame, queued, ok = n.nextQueued(l)
	}
	if w.Buffered() == 0 {
		return nil
	}
	return n.timedWrite(l, w.Flush)
}

// timedWrite runs one write to the link's socket, recording when it began
// so that the keepalive sweep sees a socket that stopped taking data.
func (n *Node) timedWrite(l *link, write func() error) error {
	l.writingSince.Store(int64(max(n.now(), 1)))
	err := write()
	l.writingSince.Store(0)
	return err
}

// The batches a link hands to and takes from the kernel at once.
const (
	writeBufferSize = 64 << 10
	readBufferSize  = 64 << 10
)

// nextQueued returns the bytes ready to send without waiting: the rest of
// a frame a sender began (see writeDirect), a credit grant (the peer may
// be waiting on it), then control frames, then the next payload if the
// peer's credit covers it. queued reports whether they count among the
// link's unwritten frames. writeMu is held.
func (n *Node) nextQueued(l *link) (_ []byte, queued, ok bool) {
	if l.rest != nil {
		f := l.rest
		l.rest = nil
		return f, true, true
	}
	if f, ok := l.flow.takeGrant(); ok {
		return f, false, true
	}
	select {
	case f := <-l.control:
		return f, true, true
	default:
	}
	for {
		if l.held == nil {
			select {
			case l.held = <-l.data:
			default:
				return nil, false, false
			}
		}
		size := int64(binary.BigEndian.Uint32(l.held))
		if peerMax := l.peerMaxFrame.Load(); size > peerMax {
			// Send refuses such a payload once the link's handshake is
			// done; one queued before that is dropped here, loudly,
			// rather than sent to be refused with the link.
			n.log.Warn("membership: payload larger than the peer accepts, dropped", "peer", l.peer.Name, "size", size, "peerMaxFrame", peerMax)
			l.held = nil
			l.unwritten.Add(-1)
			continue
		}
		cost := payloadCost(int(size))
		if !l.flow.canSend(cost) {
			return nil, false, false
		}
		l.flow.spend(cost)
		f := l.held
		l.held = nil
		return f, true, true
	}
}

// finishLink closes a stopped link, first flushing its queues if it was
// retired rather than aborted.
func (n *Node) finishLink(l *link, conn net.Conn) {
	l.writeMu.Lock() // a sender may be writing
	defer l.writeMu.Unlock()
	if l.drain.Load() {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		w := bufio.NewWriterSize(conn, writeBufferSize)
		for {
			f, _, ok := n.nextQueued(l)
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

// readLoop owns a link's read side: HyParView messages go to the node's
// loop; payloads go straight to the event queue when its peer's LinkUp is
// queued and no earlier frame of this link is still in the loop, and
// through the loop otherwise, so that they keep their place after the
// link events the frames before them cause; heartbeats and credit are
// handled here. It never waits for the application: the peer sends
// payloads only against credit, so there is always room for what arrives,
// and pings keep being answered however far behind the application is.
func (n *Node) readLoop(l *link, conn net.Conn) {
	r := bufio.NewReaderSize(conn, readBufferSize)
	for {
		typ, body, err := wire.ReadFrame(r, n.cfg.MaxFrame)
		if err != nil {
			if tooLarge := (*wire.FrameTooLargeError)(nil); errors.As(err, &tooLarge) {
				n.log.Warn("membership: frame larger than this node's MaxFrame, dropping link",
					"peer", l.peer.Name, "size", tooLarge.Size, "maxFrame", tooLarge.Max)
			}
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
		case frameCredit:
			if err := l.flow.credited(f.credit); err != nil {
				n.log.Warn("membership: bad payload credit, dropping link", "peer", l.peer.Name, "err", err)
				n.linkBroken(l, err)
				return
			}
		case framePayload:
			if err := l.flow.received(payloadCost(len(body) + 1)); err != nil {
				n.log.Warn("membership: payload without credit, dropping link", "peer", l.peer.Name, "err", err)
				n.linkBroken(l, err)
				return
			}
			if !l.superseded.Load() && l.inLoop.Load() == 0 && n.events.pushPayloadIfLinked(Event{Type: Message, Peer: l.peer, Payload: f.payload}, l.flow) {
				continue
			}
			l.inLoop.Add(1)
			if !n.input(coreInput{kind: inputPayload, peer: l.peer, payload: f.payload, link: l}) {
				return
			}
		default:
			l.inLoop.Add(1)
			if !n.input(coreInput{kind: inputMessage, peer: l.peer, msg: f.msg, link: l}) {
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
	n.input(coreInput{kind: inputLinkFailed, peer: l.peer, link: l, err: err})
}

// serveConn authenticates an accepted connection, then either reads the
// few frames of a transient connection or makes it a link.
func (n *Node) serveConn(conn net.Conn, handshakeDone func()) {
	if !n.trackConn(conn) {
		handshakeDone()
		return
	}
	res, err := n.hs.accept(conn)
	handshakeDone()
	if err != nil {
		n.untrackConn(conn)
		n.log.Warn("membership: refused overlay connection", "remote", conn.RemoteAddr().String(), "err", err)
		conn.Close()
		return
	}
	if res.transient {
		n.readTransient(conn, res.peer)
		n.untrackConn(conn)
		return
	}
	l := newLink(res.peer, res.peer.Name, n.hs.announcedWindow())
	attached := l.attach(conn, res, n.now())
	n.untrackConn(conn)
	if !attached || !n.adopt(l) {
		conn.Close()
		return
	}
	if l.replacesStale.Load() && !n.input(coreInput{kind: inputLinkReplaced, peer: l.peer, link: l}) {
		l.abort()
		n.forget(l)
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

// maxTransientSends bounds the transient sends in flight: each holds a
// goroutine and a connection for up to a few seconds against a dead peer.
const maxTransientSends = 32

// sendTransient delivers one frame over a short-lived connection; a failure
// is reported to the core with TransientFailed, which leaves a working
// link to the same peer alone. It returns false,
// having sent nothing, when maxTransientSends are already in flight: the
// caller reports that as a failed send, so that a burst of sends to dead
// peers costs a bounded number of goroutines.
func (n *Node) sendTransient(to Peer, frame []byte) bool {
	select {
	case n.transients <- struct{}{}:
	default:
		return false
	}
	ok := n.spawn(func() {
		defer func() { <-n.transients }()
		conn, _, err := n.dial(to, true)
		if err == nil {
			_ = conn.SetWriteDeadline(time.Now().Add(dialTimeout))
			_, err = conn.Write(frame)
			n.untrackConn(conn)
			conn.Close()
		}
		if err != nil {
			n.log.Debug("membership: transient send", "peer", to.Name, "err", err)
			n.input(coreInput{kind: inputTransientFailed, peer: to})
		}
	})
	if !ok {
		<-n.transients
	}
	return ok
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
// replaces an older one (the peer reconnected). When the link replaced had
// been established for longer than a keepalive period, no simultaneous
// open explains the new one: the peer gave up on the old link (it stalled,
// or timed out), whose frames in flight may be lost, and adopt marks the
// new link replacesStale so that the consumer is told (see linkReset).
func (n *Node) adopt(l *link) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.conns[l] = struct{}{}
	cur := n.links[l.peer.Name]
	// A primary that failed (its failure not yet taken by the loop) is
	// as stale as a live one the peer gave up on.
	if cur != nil {
		if est := cur.established.Load(); est != 0 && n.now()-time.Duration(est) > n.cfg.KeepAlive {
			l.replacesStale.Store(true)
		}
	}
	if cur == nil || cur.stopped() {
		n.links[l.peer.Name] = l
		return true
	}
	winner := min(n.self.Name, l.peer.Name)
	if cur.initiator == winner && l.initiator != winner {
		l.replacesStale.Store(false)
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
	l := newLink(peer, n.self.Name, n.hs.announcedWindow())
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
