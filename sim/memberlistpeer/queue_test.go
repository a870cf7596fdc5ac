package memberlistpeer

import "testing"

// A message goes out RetransmitMult * ceil(log10(n+1)) times, as
// memberlist's gossip sends it, and then leaves the queue.
func TestMessageGoesOutALimitedNumberOfTimes(t *testing.T) {
	q := NewQueue(func() int { return 100 }, 4) // 4 * ceil(log10(101)) = 12
	q.Queue([]byte("m1"))
	sent := 0
	for q.Len() > 0 {
		msgs := q.Get(2, 1400)
		if len(msgs) != 1 || string(msgs[0]) != "m1" {
			t.Fatalf("got %q, want m1", msgs)
		}
		sent++
	}
	if sent != 12 {
		t.Errorf("m1 went out %d times, want 12", sent)
	}
}
