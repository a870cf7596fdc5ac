package membership

import (
	"testing"
	"time"
)

func TestRTTEstimatorFirstSample(t *testing.T) {
	e := newRTTEstimator(time.Millisecond, time.Minute)
	if _, ok := e.smoothed(); ok {
		t.Fatal("smoothed reports a value before any sample")
	}
	if got := e.rto(); got != initialRTO {
		t.Fatalf("rto before samples = %v, want %v", got, initialRTO)
	}
	e.observe(100 * time.Millisecond)
	srtt, ok := e.smoothed()
	if !ok || srtt != 100*time.Millisecond {
		t.Fatalf("srtt = %v %v, want 100ms", srtt, ok)
	}
	// rttvar = R/2 = 50ms, rto = 100 + 4*50 = 300ms.
	if got := e.rto(); got != 300*time.Millisecond {
		t.Fatalf("rto = %v, want 300ms", got)
	}
}

func TestRTTEstimatorFollowsRFC6298(t *testing.T) {
	e := newRTTEstimator(time.Millisecond, time.Minute)
	e.observe(100 * time.Millisecond)
	e.observe(200 * time.Millisecond)
	// rttvar = 3/4*50 + 1/4*|100-200| = 37.5 + 25 = 62.5ms
	// srtt = 7/8*100 + 1/8*200 = 112.5ms
	srtt, _ := e.smoothed()
	if srtt != 112500*time.Microsecond {
		t.Fatalf("srtt = %v, want 112.5ms", srtt)
	}
	if e.rttvar != 62500*time.Microsecond {
		t.Fatalf("rttvar = %v, want 62.5ms", e.rttvar)
	}
	if got := e.rto(); got != 362500*time.Microsecond {
		t.Fatalf("rto = %v, want 362.5ms", got)
	}
}

func TestRTTEstimatorConvergesOnSteadySamples(t *testing.T) {
	e := newRTTEstimator(time.Millisecond, time.Minute)
	e.observe(500 * time.Millisecond)
	for range 100 {
		e.observe(10 * time.Millisecond)
	}
	srtt, _ := e.smoothed()
	if srtt < 9*time.Millisecond || srtt > 11*time.Millisecond {
		t.Fatalf("srtt = %v after 100 steady 10ms samples", srtt)
	}
	if rto := e.rto(); rto > 12*time.Millisecond {
		t.Fatalf("rto = %v: variance did not decay", rto)
	}
}

func TestRTTEstimatorClamps(t *testing.T) {
	e := newRTTEstimator(50*time.Millisecond, 2*time.Second)
	e.observe(time.Millisecond)
	if got := e.rto(); got != 50*time.Millisecond {
		t.Fatalf("rto = %v, want the 50ms floor", got)
	}
	e = newRTTEstimator(50*time.Millisecond, 2*time.Second)
	e.observe(5 * time.Second)
	if got := e.rto(); got != 2*time.Second {
		t.Fatalf("rto = %v, want the 2s ceiling", got)
	}
}

func TestRTTEstimatorIgnoresNegativeSamples(t *testing.T) {
	e := newRTTEstimator(time.Millisecond, time.Minute)
	e.observe(-time.Second)
	if _, ok := e.smoothed(); ok {
		t.Fatal("a negative sample was counted")
	}
}

func TestLinkTimeout(t *testing.T) {
	ka := 500 * time.Millisecond
	if got := linkTimeout(ka, 20*time.Millisecond); got != 3*ka {
		t.Fatalf("fast link: timeout %v, want the %v floor", got, 3*ka)
	}
	if got := linkTimeout(ka, 4*time.Second); got != ka+4*time.Second {
		t.Fatalf("slow link: timeout %v, want keepalive+rto", got)
	}
}
