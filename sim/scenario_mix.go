package sim

import (
	"time"
)

// MixRate measures how often the overlay policy mixes in a settled
// cluster with no failure: the cores call Mix about twice per mixing
// interval cluster-wide (hyparview.Config.MixTicks), plus once per
// interval on every node that suspects it sits in an island, which in one
// connected overlay none should.
type MixRate struct {
	Config  Config
	Cluster Cluster
	// Intervals is how many mixing intervals are counted after the cluster
	// settled (default 10).
	Intervals int
}

// MixRateResult is what MixRate measured.
type MixRateResult struct {
	// PerInterval is the Mix calls of each counted interval.
	PerInterval []uint64
	// Mean is their mean, and Intended the rate the policy aims at.
	Mean, Intended float64
	// Islands is how many live nodes thought they were in an island at the
	// end.
	Islands int
	Overlay Overlay // at the end
}

// Run runs the scenario.
func (sc MixRate) Run() (MixRateResult, error) {
	if sc.Intervals <= 0 {
		sc.Intervals = 10
	}
	var res MixRateResult
	s, err := build(sc.Config, sc.Cluster)
	if err != nil {
		return res, err
	}
	interval := time.Duration(s.cfg.HyParView.MixTicks) * s.cfg.Tick
	if s.cfg.HyParView.MixTicks <= 0 {
		interval = s.cfg.MixInterval
	}
	res.Intended = 2
	var total uint64
	for range sc.Intervals {
		before := s.Stats().Mixes
		s.RunFor(interval)
		n := s.Stats().Mixes - before
		res.PerInterval = append(res.PerInterval, n)
		total += n
	}
	res.Mean = float64(total) / float64(sc.Intervals)
	for _, i := range s.LiveNodes() {
		if s.nodes[i].hv.Island() {
			res.Islands++
		}
	}
	res.Overlay = s.Overlay(0)
	return res, nil
}
