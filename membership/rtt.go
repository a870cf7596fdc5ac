package membership

import "time"

// rttEstimator smooths round-trip samples the way TCP computes its
// retransmission timeout (RFC 6298, after Jacobson and Karels): srtt follows
// the samples with gain 1/8, rttvar follows their deviation with gain 1/4,
// and rto = srtt + 4*rttvar, clamped to [minRTO, maxRTO]. A link's failure
// timeout is derived from rto, so a slow but live link is not declared dead
// while a dead one on a fast network is noticed within a few round trips.
type rttEstimator struct {
	srtt    time.Duration
	rttvar  time.Duration
	samples int
	minRTO  time.Duration
	maxRTO  time.Duration
}

// Bounds on the timeout: below a few milliseconds scheduling noise dominates
// loopback samples; above ten seconds a link is better replaced than waited on.
const (
	defaultMinRTO = 20 * time.Millisecond
	defaultMaxRTO = 10 * time.Second
	// initialRTO is the timeout before the first sample (RFC 6298 says 1 s;
	// on a LAN a keepalive period or two is the better guess, and the
	// caller's timeout already has a keepalive-based floor).
	initialRTO = time.Second
)

func newRTTEstimator(minRTO, maxRTO time.Duration) rttEstimator {
	return rttEstimator{minRTO: minRTO, maxRTO: maxRTO}
}

// observe feeds one round-trip sample. Negative samples (a clock step) are
// ignored rather than allowed to drag the estimate below zero.
func (e *rttEstimator) observe(sample time.Duration) {
	if sample < 0 {
		return
	}
	if e.samples == 0 {
		// RFC 6298 2.2: the first measurement sets srtt = R, rttvar = R/2.
		e.srtt = sample
		e.rttvar = sample / 2
	} else {
		// RFC 6298 2.3, with alpha = 1/8 and beta = 1/4; rttvar is updated
		// from the old srtt, as the RFC requires.
		dev := e.srtt - sample
		if dev < 0 {
			dev = -dev
		}
		e.rttvar += (dev - e.rttvar) / 4
		e.srtt += (sample - e.srtt) / 8
	}
	e.samples++
}

// smoothed returns srtt and whether any sample was seen.
func (e *rttEstimator) smoothed() (time.Duration, bool) {
	return e.srtt, e.samples > 0
}

// rto returns the retransmission-style timeout: srtt + 4*rttvar, clamped.
func (e *rttEstimator) rto() time.Duration {
	if e.samples == 0 {
		return clampDuration(initialRTO, e.minRTO, e.maxRTO)
	}
	return clampDuration(e.srtt+4*e.rttvar, e.minRTO, e.maxRTO)
}

func clampDuration(d, lo, hi time.Duration) time.Duration {
	return min(max(d, lo), hi)
}
