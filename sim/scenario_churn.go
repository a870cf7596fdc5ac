package sim

import (
	"fmt"
	"time"
)

// Churn keeps nodes leaving (crashing) and coming back (restarting as new
// processes that join again) while broadcasts go on.
type Churn struct {
	Config  Config
	Cluster Cluster
	// Rate is the number of churn events per second (default 1% of the
	// nodes): each crashes a random live node or, half of the time when
	// some are down, restarts a random crashed one.
	Rate float64
	// Duration of the churn (default 60 s), with one broadcast every
	// Interval (default 1 s) from a random live node.
	Duration time.Duration
	Interval time.Duration
	Peers    bool
	// Sample is how often the overlay is measured (default 5 s).
	Sample time.Duration
}

// ChurnResult is what Churn measured.
type ChurnResult struct {
	Crashes, Restarts int
	Results           []BroadcastResult
	// Overlays samples the overlay every Sample, with the time since the
	// churn began.
	Overlays []TimedOverlay
	Stats    Stats
	SimTime  time.Duration
}

// TimedOverlay is an overlay measured at a time.
type TimedOverlay struct {
	At time.Duration
	Overlay
}

// Run runs the scenario.
func (sc Churn) Run() (ChurnResult, error) {
	var res ChurnResult
	if sc.Rate <= 0 {
		sc.Rate = float64(sc.Cluster.Nodes) / 100
	}
	if sc.Duration <= 0 {
		sc.Duration = time.Minute
	}
	if sc.Interval <= 0 {
		sc.Interval = time.Second
	}
	if sc.Sample <= 0 {
		sc.Sample = 5 * time.Second
	}
	s, err := build(sc.Config, sc.Cluster)
	if err != nil {
		return res, err
	}
	protos := []Protocol{Plumtree}
	if sc.Peers {
		protos = append(protos, Flood, Gossip)
	}
	r := scenarioRand(s.cfg.Seed)
	start := s.Now()
	var down []int
	every := time.Duration(float64(time.Second) / sc.Rate)
	for at := start + every; at < start+sc.Duration; at += every {
		s.At(at, func() {
			if len(down) > 0 && r.IntN(2) == 0 {
				k := r.IntN(len(down))
				s.Restart(down[k])
				down = append(down[:k], down[k+1:]...)
				res.Restarts++
				return
			}
			live := s.LiveNodes()
			if len(live) <= 2 {
				return
			}
			victim := live[r.IntN(len(live))]
			s.Crash(victim)
			down = append(down, victim)
			res.Crashes++
		})
	}
	var ids []int
	var bcastErr error
	for at := start + sc.Interval; at < start+sc.Duration; at += sc.Interval {
		s.At(at, func() {
			live := s.LiveNodes()
			got, err := s.broadcastAll(live[r.IntN(len(live))], protos)
			if err != nil && bcastErr == nil {
				bcastErr = err
			}
			ids = append(ids, got...)
		})
	}
	for s.Now() < start+sc.Duration {
		s.RunFor(sc.Sample)
		res.Overlays = append(res.Overlays, TimedOverlay{At: s.Now() - start, Overlay: s.Overlay(0)})
	}
	s.RunFor(drainTime)
	if bcastErr != nil {
		return res, bcastErr
	}
	for _, id := range ids {
		res.Results = append(res.Results, s.Result(id))
	}
	res.Stats, res.SimTime = s.Stats(), s.Now()
	return res, nil
}

// Shape builds a cluster and measures its overlay: how soon after the last
// join it is one connected component, then in-degree spread, clustering and
// path lengths of the active-view graph once it has settled.
type Shape struct {
	Config  Config
	Cluster Cluster
	// PathSources bounds the breadth-first searches of the average
	// shortest path (default 100).
	PathSources int
}

// ShapeResult is what Shape measured.
type ShapeResult struct {
	// AtLastJoin is the overlay's component count and largest component
	// when the last node started.
	AtLastJoin, LargestAtLastJoin int
	// OneComponent is how long after the last node started the overlay
	// became one connected component for good (it stayed one at every
	// tick until the end of Settle); negative if it was still split at the
	// end.
	OneComponent time.Duration
	Overlay      Overlay // at the end of Settle
	Stats        Stats
	SimTime      time.Duration
}

// Run runs the scenario.
func (sc Shape) Run() (ShapeResult, error) {
	if sc.PathSources <= 0 {
		sc.PathSources = 100
	}
	var res ShapeResult
	if sc.Cluster.Nodes < 2 {
		return res, fmt.Errorf("sim: a cluster needs at least 2 nodes, not %d", sc.Cluster.Nodes)
	}
	s, err := New(sc.Config)
	if err != nil {
		return res, err
	}
	c := sc.Cluster.withDefaults(s.cfg)
	s.AddNodes(c.Nodes, c.JoinEvery)
	// The last node starts at (Nodes-1)·JoinEvery.
	lastJoin := time.Duration(c.Nodes-1) * c.JoinEvery
	s.RunUntil(lastJoin)
	res.AtLastJoin, res.LargestAtLastJoin = s.components()
	split := res.AtLastJoin > 1
	settled := lastJoin
	for s.Now() < lastJoin+c.Settle {
		s.RunFor(s.cfg.Tick)
		if comps, _ := s.components(); comps > 1 {
			split, settled = true, s.Now()
		} else if split {
			split, settled = false, s.Now()
		}
	}
	res.OneComponent = settled - lastJoin
	if split {
		res.OneComponent = -1
	}
	res.Overlay = s.Overlay(sc.PathSources)
	res.Stats, res.SimTime = s.Stats(), s.Now()
	return res, nil
}
