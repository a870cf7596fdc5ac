package membership

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

// stallingConsumer reads a node's events, except while stalled: then it
// reads nothing at all, as an application blocked in a handler would.
type stallingConsumer struct {
	mu       sync.Mutex
	stalled  bool
	resume   chan struct{}
	payloads []uint64 // sequence numbers of the payloads received, in order
	downs    []Event
}

func consumeStalling(n *Node) *stallingConsumer {
	c := &stallingConsumer{resume: make(chan struct{})}
	go func() {
		for ev := range n.Events() {
			c.mu.Lock()
			switch ev.Type {
			case Message:
				c.payloads = append(c.payloads, binary.BigEndian.Uint64(ev.Payload))
			case LinkDown:
				c.downs = append(c.downs, ev)
			}
			stalled, resume := c.stalled, c.resume
			c.mu.Unlock()
			if stalled {
				<-resume
			}
		}
	}()
	return c
}

// stall makes the consumer stop after the event it is handling (or the
// next one) until unstall.
func (c *stallingConsumer) stall() {
	c.mu.Lock()
	c.stalled = true
	c.mu.Unlock()
}

func (c *stallingConsumer) unstall() {
	c.mu.Lock()
	c.stalled = false
	close(c.resume)
	c.resume = make(chan struct{})
	c.mu.Unlock()
}

func (c *stallingConsumer) received() ([]uint64, []Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.payloads...), append([]Event(nil), c.downs...)
}

// TestStalledConsumerKeepsLinks: b's application stops reading its events
// for several seconds while a sends it 1,000 payloads a second. The link
// must survive (b keeps reading a's heartbeats; a's full queue is b's
// consumer, not a dead peer), neither side may suspect the other, and
// every payload a's Send accepted must reach b, in order, once b reads
// again; the others were refused by Send.
func TestStalledConsumerKeepsLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("a several-second stall")
	}
	const (
		rate     = 1000 // payloads per second
		before   = time.Second
		stallFor = 3 * time.Second
		after    = time.Second
	)
	a, b := joinPair(t)
	aEvents := consumeStalling(a)
	bEvents := consumeStalling(b)
	var suspicions []StatusEvent
	var statusMu sync.Mutex
	for _, n := range []*Node{a, b} {
		go func() {
			for ev := range n.Statuses() {
				if ev.Status == StatusSuspect || ev.Status == StatusDead {
					statusMu.Lock()
					suspicions = append(suspicions, ev)
					statusMu.Unlock()
				}
			}
		}()
	}

	var accepted []uint64
	refused, notActive := 0, 0
	lostLink := ""
	// 16 KiB at 1,000/s: the stall offers several times the window.
	payload := make([]byte, 16<<10)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	stallAt, resumeAt, end := start.Add(before), start.Add(before+stallFor), start.Add(before+stallFor+after)
	stalled, resumed := false, false
	next := uint64(0)
	for now := range tick.C {
		if !stalled && now.After(stallAt) {
			bEvents.stall()
			stalled = true
		}
		if stalled && !resumed && now.After(resumeAt) {
			bEvents.unstall()
			resumed = true
		}
		if now.After(end) {
			break
		}
		if lostLink == "" && (!containsPeer(a.Active(), "b") || !containsPeer(b.Active(), "a")) {
			lostLink = now.Sub(start).Round(time.Millisecond).String()
		}
		// Keep to the rate whatever the ticker's jitter.
		for due := uint64(now.Sub(start) * rate / time.Second); next < due; next++ {
			binary.BigEndian.PutUint64(payload, next)
			switch err := a.Send("b", payload); {
			case err == nil:
				accepted = append(accepted, next)
			case errors.Is(err, ErrQueueFull):
				refused++
			case errors.Is(err, ErrNotActive):
				notActive++ // the link was lost: reported below
			default:
				t.Fatalf("send %d, %v after start: %v", next, now.Sub(start).Round(time.Millisecond), err)
			}
		}
	}

	// Once b reads again, everything accepted arrives.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := bEvents.received()
		if len(got) >= len(accepted) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, bDowns := bEvents.received()
	_, aDowns := aEvents.received()
	t.Logf("%d payloads offered at %d/s over %v with b's consumer stalled for %v: %d accepted, %d refused with ErrQueueFull, %d delivered",
		next, rate, before+stallFor+after, stallFor, len(accepted), refused, len(got))
	if lostLink != "" {
		t.Errorf("the a-b link left an active view %s after start; %d sends refused as not active", lostLink, notActive)
	}
	if len(aDowns)+len(bDowns) > 0 {
		t.Errorf("link-down events: a %v, b %v", aDowns, bDowns)
	}
	statusMu.Lock()
	if len(suspicions) > 0 {
		t.Errorf("a live peer was suspected: %+v", suspicions)
	}
	statusMu.Unlock()
	if len(got) != len(accepted) {
		t.Fatalf("b received %d payloads, a's Send accepted %d", len(got), len(accepted))
	}
	for i := range got {
		if got[i] != accepted[i] {
			t.Fatalf("payload %d received is #%d, want #%d (accepted payloads lost or reordered)", i, got[i], accepted[i])
		}
	}
	if refused == 0 {
		t.Fatal("Send accepted everything during a 3 s stall: the backlog is unbounded")
	}
}
