package main

import (
	"sync"
	"time"
)

// streamWriteInterval is the least time between two writes to one watch
// stream while open streams are open and the node's write budget is writes
// per second (--watch-writes; 0 writes each change at once).
//
// Up to fullBudgetStreams streams share the budget: each waits open/writes
// (10 µs with one stream and the default budget, so a change after a quiet
// spell, or each of 500 a second, goes out at once). Past it the budget
// itself shrinks as streams grow, so the interval grows with the square
// of their number, up to maxScaledInterval: every write costs a syscall
// and a wake-up however few events it carries, and a thousand streams of
// a busy group writing 100,000 times a second took most of the node's CPU
// from the joins that make their events. The interval is never shorter
// than the shared budget's, so a small --watch-writes is still obeyed.
func streamWriteInterval(open int64, writes int) time.Duration {
	if writes <= 0 || open <= 0 {
		return 0
	}
	shared := time.Duration(int64(time.Second) * open / int64(writes))
	scaled := min(shared*time.Duration(open)/fullBudgetStreams, maxScaledInterval)
	return max(shared, scaled)
}

const (
	// fullBudgetStreams is how many open streams the whole write budget
	// serves; past it the budget shrinks in proportion.
	fullBudgetStreams = 100
	// maxScaledInterval bounds the wait the shrinking budget adds: a
	// change reaches every watcher within it.
	maxScaledInterval = 50 * time.Millisecond
)

// pacer wakes the streams that wait out their write interval together, a
// few batches per interval, instead of each on a timer of its own: a
// thousand streams of a busy group each waking at its own moment kept the
// node's threads going to sleep and waking up between them, and that
// switching cost more than the streams' own work.
type pacer struct {
	mu    sync.Mutex
	ticks map[int64]chan struct{} // by the time it closes, in ns
}

// pacerSlots is how many wake-up times an interval has: a stream waits
// its interval and at most a quarter of it more.
const pacerSlots = 4

// after returns a channel closed once d has passed, at the next of the
// times every stream waiting about as long shares.
func (p *pacer) after(d time.Duration) <-chan struct{} {
	slot := max(int64(d)/pacerSlots, 1)
	now := time.Now()
	at := (now.UnixNano() + int64(d) + slot - 1) / slot * slot
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.ticks[at]; ok {
		return ch
	}
	if p.ticks == nil {
		p.ticks = make(map[int64]chan struct{})
	}
	ch := make(chan struct{})
	p.ticks[at] = ch
	time.AfterFunc(time.Unix(0, at).Sub(now), func() {
		p.mu.Lock()
		delete(p.ticks, at)
		p.mu.Unlock()
		close(ch)
	})
	return ch
}
