package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A lone stream writes each change at once; many streams batch more, the
// more of them there are, up to the bound; an explicit small budget is
// obeyed past the bound.
func TestStreamWriteIntervalGrowsWithOpenStreams(t *testing.T) {
	const budget = 100_000 // the default --watch-writes
	require.Equal(t, 10*time.Microsecond, streamWriteInterval(1, budget), "one stream at 500 events/s must see each within well under a millisecond")
	require.Equal(t, time.Millisecond, streamWriteInterval(100, budget))
	require.Equal(t, 25*time.Millisecond, streamWriteInterval(500, budget))
	require.Equal(t, maxScaledInterval, streamWriteInterval(1000, budget), "1,000 busy streams must batch up to the bound, not write every 10 ms")
	require.Equal(t, 100*time.Millisecond, streamWriteInterval(10_000, budget), "10,000 streams sharing the budget wait longer than the bound")
	require.Equal(t, 100*time.Millisecond, streamWriteInterval(1000, 10_000), "a budget of 10,000 writes/s shared by 1,000 streams is 100 ms each")
	require.Zero(t, streamWriteInterval(1000, 0), "--watch-writes 0 writes each change at once")
	require.Zero(t, streamWriteInterval(0, budget))
}

// Streams that wait out about the same interval wake together, a few
// batches per interval, each no sooner than its interval and at most a
// quarter of it later (plus the scheduler's delay).
func TestPacerWakesStreamsTogether(t *testing.T) {
	var p pacer
	const d = 40 * time.Millisecond
	type waiter struct {
		asked time.Time
		ch    <-chan struct{}
	}
	var waiters []waiter
	distinct := map[<-chan struct{}]bool{}
	for range 100 {
		w := waiter{time.Now(), p.after(d)}
		waiters = append(waiters, w)
		distinct[w.ch] = true
	}
	require.LessOrEqual(t, len(distinct), 3, "100 streams asking within a moment share a few wake-ups")
	for _, w := range waiters {
		<-w.ch
		waited := time.Since(w.asked)
		require.GreaterOrEqual(t, waited, d)
		require.Less(t, waited, d+d/pacerSlots+50*time.Millisecond)
	}
	require.Empty(t, p.ticks, "a wake-up that went off is forgotten")
}
