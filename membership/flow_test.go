package membership

import (
	"strings"
	"testing"
	"time"

	"github.com/cpggo/cpg/internal/wire"
)

func TestFlowControlRefusesCreditOverTheWindow(t *testing.T) {
	f := newFlowControl(800)
	f.start(400)
	for range 4 {
		if !f.canSend(100) {
			t.Fatal("out of credit before the window was spent")
		}
		f.spend(100)
	}
	if f.canSend(1) {
		t.Fatal("credit left after spending the whole window")
	}
	if err := f.credited(401); err == nil {
		t.Fatal("a grant over the peer's window was accepted")
	}
	if f.canSend(1) {
		t.Fatal("a refused grant was applied")
	}
	if err := f.credited(400); err != nil {
		t.Fatal(err)
	}
	if err := f.credited(1); err == nil {
		t.Fatal("credit beyond the window in total was accepted")
	}
	if got := f.sendCredit.Load(); got != 400 {
		t.Fatalf("credit %d, want 400", got)
	}
}

func TestFlowControlRefusesPayloadsWithoutCredit(t *testing.T) {
	f := newFlowControl(200)
	for range 2 {
		if err := f.received(100); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.received(1); err == nil {
		t.Fatal("a payload beyond the window was accepted")
	}
	f.release(100)
	if err := f.received(100); err != nil {
		t.Fatalf("a payload after its credit came back: %v", err)
	}
}

// TestFlowControlNeverStrandsASender: payloads of varying sizes up to the
// largest the window allows (half of it), received and taken in varying
// order. The sender must never be left short of credit for its next
// payload with nothing queued at the receiver, and once the application
// has taken everything, at most a quarter window may be held back.
func TestFlowControlNeverStrandsASender(t *testing.T) {
	const window = 1 << 16
	recv := newFlowControl(window)
	send := newFlowControl(window)
	send.start(window)
	var queued []int64
	sizes := []int64{100, window / 2, 3000, 1, window / 3, 17}
	next := 0
	exchange := func(round int) {
		if frame, ok := recv.takeGrant(); ok {
			n, err := decodeCredit(frame[5:])
			if err != nil {
				t.Fatal(err)
			}
			if err := send.credited(n); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	for round := range 5000 {
		// The sender writes what its credit covers, a few at a time.
		for i := 0; i < 1+round%7; i++ {
			cost := sizes[next%len(sizes)]
			if !send.canSend(cost) {
				if len(queued) == 0 && recv.grant.Load() == 0 {
					t.Fatalf("round %d: sender short of %d bytes of credit (holds %d) with nothing queued", round, cost, send.sendCredit.Load())
				}
				break
			}
			send.spend(cost)
			if err := recv.received(cost); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			queued = append(queued, cost)
			next++
		}
		// The application takes a varying number.
		for i := 0; i < round%5 && len(queued) > 0; i++ {
			recv.release(queued[0])
			queued = queued[1:]
		}
		exchange(round)
	}
	for _, cost := range queued {
		recv.release(cost)
	}
	exchange(-1)
	if got := send.sendCredit.Load(); got <= window-window/4 {
		t.Fatalf("sender holds %d bytes of credit with nothing queued, want more than three quarters of the %d window", got, window)
	}
}

// TestPayloadBeyondCreditDropsTheLink: a peer that ignores its credit and
// keeps sending payloads to a node whose application is not reading loses
// the link, with a warning, instead of making the node buffer without
// bound.
func TestPayloadBeyondCreditDropsTheLink(t *testing.T) {
	var logs logRecorder
	cfg := testNodeConfig("a")
	cfg.Logger = logs.logger()
	n := startNode(t, cfg)
	conn, res := dialAsGhost(t, n)
	nextEvent(t, n, LinkUp, 5*time.Second)
	// Nobody reads n's events from here on: no credit comes back.
	payload := make([]byte, 1<<20)
	sent := 0
	for int64(sent)*payloadCost(len(payload)+1) <= int64(res.peerWindow) {
		if err := wire.WriteFrame(conn, framePayload, payload, wire.DefaultMaxFrame); err != nil {
			break // n already cut the link
		}
		sent++
	}
	waitFor(t, 5*time.Second, "the link to a peer sending without credit is still up", func() bool {
		return !containsPeer(n.Active(), "ghost")
	})
	for _, l := range logs.lines("WARN") {
		if strings.Contains(l, "without credit") {
			t.Logf("after %d payloads of 1 MiB against a %d-byte window: %s", sent, res.peerWindow, l)
			return
		}
	}
	t.Fatalf("no warning about payloads without credit: %q", logs.lines("WARN"))
}
