package membership

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/cpggo/cpg/internal/wire"
)

// Payload flow control, per link and per direction, by credit in bytes (as
// HTTP/2 and yamux do it). A receiver buffers at most its window of
// payload bytes for a link: it announces the window in the handshake, the
// sender starts with that much credit and spends a payload's cost per
// payload frame, and the receiver hands credit back in a credit frame as
// its application takes payloads.
//
// Why credit rather than pausing the read side: heartbeats and protocol
// frames share the TCP stream with payloads, so a reader that stops
// reading to hold back payloads stops reading pings too, and a live peer
// whose application is merely slow then looks dead. With credit, a sender
// never puts on the wire more payloads than the receiver has room for, so
// the receiver's reader never waits: heartbeats and control frames keep
// flowing however far behind the application is, and the backlog stays on
// the sender's side, where Send reports it (ErrQueueFull).
//
// Why bytes rather than payloads: a window of N payloads of up to MaxFrame
// each would let one link hold N times MaxFrame (a gigabyte at the
// defaults); in bytes, what a node buffers for its application is its
// window times its links, whatever the payloads' sizes.

// minLinkWindow is the smallest window a node announces: enough for LAN
// bandwidth-delay products many times over, small enough that a node with
// a dozen links buffers about a hundred megabytes at worst.
const minLinkWindow = 8 << 20

// payloadOverhead is what a queued payload costs besides its frame: the
// event and slice headers. Charging it keeps a flood of tiny payloads from
// queueing millions of events within a window.
const payloadOverhead = 64

// maxLinkWindow bounds the window a peer may announce (and a credit frame).
const maxLinkWindow = math.MaxUint32

// maxMaxFrame bounds MaxFrame, so that a window of two frames stays under
// maxLinkWindow.
const maxMaxFrame = 1 << 30

// linkWindow is the window a node whose frames may be maxFrame long
// announces: room for two of its largest payloads at least, so a payload of
// any size the node accepts can always be sent.
func linkWindow(maxFrame int) int {
	return max(minLinkWindow, 2*(maxFrame+payloadOverhead))
}

// payloadCost is what a payload frame whose length prefix says frameLen
// counts against the window.
func payloadCost(frameLen int) int64 { return int64(frameLen) + payloadOverhead }

// flowControl is one link's credit state, in both directions. The reader
// goroutine receives payloads and credit frames, the writer spends credit
// and sends grants, the event pump releases consumed payloads: every field
// is atomic.
type flowControl struct {
	// Sending: credit left (bytes of payload frames we may still write)
	// and the most the peer ever allows (its window).
	sendCredit atomic.Int64
	peerWindow int64

	// Receiving: our window, the credit the peer still holds (a payload
	// beyond it is a protocol violation), and credit freed by our
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

// canSend reports whether the writer may write a payload of this cost.
func (f *flowControl) canSend(cost int64) bool { return f.sendCredit.Load() >= cost }

// spend accounts for a payload frame about to be written. Only the holder
// of the link's writeMu calls it.
func (f *flowControl) spend(cost int64) { f.sendCredit.Add(-cost) }

// refund gives back what spend took for a frame that was not written.
func (f *flowControl) refund(cost int64) { f.sendCredit.Add(cost) }

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

// received accounts for a payload of this cost read off the wire; an error
// if the peer had no credit for it.
func (f *flowControl) received(cost int64) error {
	if f.peerHolds.Add(-cost) < 0 {
		f.peerHolds.Add(cost)
		return fmt.Errorf("membership: payload of %d bytes beyond the %d-byte window", cost, f.window)
	}
	return nil
}

// release hands back the credit of a payload the application took (or one
// dropped because its peer is no longer active). Credit goes back in
// batches of a quarter window, one frame per batch, so at most a quarter
// window is ever held back: a sender out of credit has a window's worth
// queued here or freed, and gets a grant.
func (f *flowControl) release(cost int64) {
	if f.freed.Add(cost) < max(f.window/4, 1) {
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
