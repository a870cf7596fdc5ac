package membership

import (
	"fmt"
	"sync/atomic"

	"github.com/cpggo/cpg/internal/wire"
)

// Payload flow control, per link and per direction, by credit (as HTTP/2
// and yamux do it). A receiver buffers at most its window of payloads for a
// link: it announces the window in the handshake, the sender starts with
// that many credits and spends one per payload frame, and the receiver
// hands credits back in a credit frame as its application takes payloads.
//
// Why credit rather than pausing the read side: heartbeats and protocol
// frames share the TCP stream with payloads, so a reader that stops
// reading to hold back payloads stops reading pings too, and a live peer
// whose application is merely slow then looks dead. With credit, a sender
// never puts on the wire more payloads than the receiver has room for, so
// the receiver's reader never waits: heartbeats and control frames keep
// flowing however far behind the application is, and the backlog stays on
// the sender's side, where Send reports it (ErrQueueFull).

// defaultLinkWindow is how many payloads a node buffers per link for its
// application before the peer must wait for credit: enough for loopback and
// LAN round trips at full speed, small enough that every link of a node
// together holds a bounded amount.
const defaultLinkWindow = 256

// maxLinkWindow bounds the window a peer may announce.
const maxLinkWindow = 1 << 16

// flowControl is one link's credit state, in both directions. The reader
// goroutine receives payloads and credit frames, the writer spends credit
// and sends grants, the event pump releases consumed payloads: every field
// is atomic.
type flowControl struct {
	// Sending: credits left (payload frames we may still write) and the
	// most the peer ever allows (its window).
	sendCredit atomic.Int64
	peerWindow int64

	// Receiving: our window, the credits the peer still holds (a payload
	// beyond them is a protocol violation), and credits freed by our
	// application not yet handed back.
	window    int64
	peerHolds atomic.Int64
	freed     atomic.Int64
	// grant is credit due to the peer that the writer has not sent yet.
	grant atomic.Int64

	// wake tells the writer that credit arrived or a grant is due.
	wake chan struct{}
}

func newFlowControl(window int) *flowControl {
	f := &flowControl{window: int64(window), wake: make(chan struct{}, 1)}
	f.peerHolds.Store(int64(window))
	return f
}

// start sets the peer's window, learned in the handshake, as our credit.
func (f *flowControl) start(peerWindow int) {
	f.peerWindow = int64(peerWindow)
	f.sendCredit.Store(int64(peerWindow))
}

func (f *flowControl) notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// canSend reports whether the writer may write one more payload frame.
func (f *flowControl) canSend() bool { return f.sendCredit.Load() > 0 }

// spend accounts for one payload frame written. Only the writer calls it.
func (f *flowControl) spend() { f.sendCredit.Add(-1) }

// credited applies a credit frame from the peer. Credit beyond the window
// the peer announced means the peer's accounting is broken: an error, and
// the credit is not applied.
func (f *flowControl) credited(n uint64) error {
	if n == 0 || n > uint64(f.peerWindow) {
		return fmt.Errorf("membership: credit of %d, peer window %d", n, f.peerWindow)
	}
	if c := f.sendCredit.Add(int64(n)); c > f.peerWindow {
		f.sendCredit.Add(-int64(n))
		return fmt.Errorf("membership: credit of %d brings the peer's grant to %d, over its window %d", n, c, f.peerWindow)
	}
	f.notify()
	return nil
}

// received accounts for one payload frame read off the wire; an error if
// the peer had no credit for it.
func (f *flowControl) received() error {
	if f.peerHolds.Add(-1) < 0 {
		f.peerHolds.Add(1)
		return fmt.Errorf("membership: payload beyond the %d-payload window", f.window)
	}
	return nil
}

// release hands back the credit of a payload the application took (or one
// dropped because its peer is no longer active). Credits go back in
// batches of a quarter window, one frame per batch, but never stay behind:
// a sender out of credit means a whole window is freed or still queued.
func (f *flowControl) release() {
	if f.freed.Add(1) < max(f.window/4, 1) {
		return
	}
	n := f.freed.Swap(0)
	if n == 0 {
		return
	}
	f.peerHolds.Add(n)
	f.grant.Add(n)
	f.notify()
}

// takeGrant returns the credit frame to send now, if any is due.
func (f *flowControl) takeGrant() ([]byte, bool) {
	n := f.grant.Swap(0)
	if n == 0 {
		return nil, false
	}
	return wire.AppendFrame(nil, frameCredit, wire.AppendUvarint(nil, uint64(n))), true
}

func decodeCredit(body []byte) (uint64, error) {
	d := wire.NewDecoder(body)
	n := d.Uvarint()
	if err := d.Finish(); err != nil {
		return 0, fmt.Errorf("membership: credit frame: %w", err)
	}
	if n == 0 || n > maxLinkWindow {
		return 0, fmt.Errorf("membership: credit frame of %d, want 1..%d", n, maxLinkWindow)
	}
	return n, nil
}
