package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Cluster is how a scenario builds its overlay: Nodes nodes start JoinEvery
// apart, each joining through a random node already started, and the
// overlay then settles for Settle.
type Cluster struct {
	Nodes     int
	JoinEvery time.Duration // default 1 ms
	Settle    time.Duration // default 2 shuffle periods
}

func (c Cluster) withDefaults(cfg Config) Cluster {
	if c.JoinEvery <= 0 {
		c.JoinEvery = time.Millisecond
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Duration(cfg.HyParView.ShuffleTicks) * cfg.Tick
	}
	return c
}

// build starts the cluster and runs until it has settled.
func build(cfg Config, c Cluster) (*Simulator, error) {
	if c.Nodes < 2 {
		return nil, fmt.Errorf("sim: a cluster needs at least 2 nodes, not %d", c.Nodes)
	}
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	c = c.withDefaults(s.cfg)
	s.AddNodes(c.Nodes, c.JoinEvery)
	s.RunFor(time.Duration(c.Nodes)*c.JoinEvery + c.Settle)
	return s, nil
}

// scenarioRand is the source of a scenario's own choices (sources, victims),
// apart from the network's so that those choices do not depend on the
// traffic.
func scenarioRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0xda3e39cb94b95bdb))
}

// drainTime is how long a scenario runs after its last broadcast before it
// measures: gossip needs about ten rounds of 200 ms, Plumtree a graft or two.
const drainTime = 3 * time.Second

// Summary aggregates broadcast results of one protocol.
type Summary struct {
	Protocol       Protocol
	Broadcasts     int
	Reliability    float64 // mean
	MinReliability float64
	AllDelivered   int     // broadcasts every eligible node delivered
	RMR            float64 // mean
	MaxRMR         float64
	LDH            float64 // mean
	MaxLDH         int
	// DepthRatio is LDH / ShortestDepth, mean and max.
	DepthRatio    float64
	MaxDepthRatio float64
	Payload       float64       // mean payload messages per broadcast
	Latency       time.Duration // mean time to the last delivery
}

// Summarize aggregates the results of protocol p.
func Summarize(p Protocol, rs []BroadcastResult) Summary {
	sum := Summary{Protocol: p, MinReliability: 1}
	var lat time.Duration
	for _, r := range rs {
		if r.Protocol != p {
			continue
		}
		sum.Broadcasts++
		sum.Reliability += r.Reliability
		sum.MinReliability = min(sum.MinReliability, r.Reliability)
		if r.Delivered == r.Eligible {
			sum.AllDelivered++
		}
		sum.RMR += r.RMR
		sum.MaxRMR = max(sum.MaxRMR, r.RMR)
		sum.LDH += float64(r.LDH)
		sum.MaxLDH = max(sum.MaxLDH, r.LDH)
		if r.ShortestDepth > 0 {
			ratio := float64(r.LDH) / float64(r.ShortestDepth)
			sum.DepthRatio += ratio
			sum.MaxDepthRatio = max(sum.MaxDepthRatio, ratio)
		}
		sum.Payload += float64(r.PayloadMessages)
		lat += r.Latency
	}
	if k := float64(sum.Broadcasts); k > 0 {
		sum.Reliability /= k
		sum.RMR /= k
		sum.LDH /= k
		sum.DepthRatio /= k
		sum.Payload /= k
		lat /= time.Duration(sum.Broadcasts)
	} else {
		sum.MinReliability = 0
	}
	sum.Latency = lat
	return sum
}

// Steady is the steady-state scenario: a settled overlay, no failures,
// broadcasts from random sources.
type Steady struct {
	Config  Config
	Cluster Cluster
	// Broadcasts is the number of measured broadcasts (default 100).
	Broadcasts int
	// Sources is the number of distinct broadcasting nodes (default 10).
	// Plumtree keeps one tree per source; each source's first broadcast
	// floods the overlay and prunes it into that tree, so it is sent (and
	// reported) as warm-up before the measured ones.
	Sources int
	// Interval separates broadcasts (default 250 ms: in steady state a
	// broadcast reaches every node within a few tens of milliseconds).
	Interval time.Duration
	// Peers also runs Flood and Gossip from the same sources at the same
	// moments.
	Peers bool
}

// SteadyResult is what Steady measured.
type SteadyResult struct {
	Warmup  []BroadcastResult // each source's first broadcast
	Results []BroadcastResult
	Overlay Overlay // when the measured broadcasts started
	// Upkeep is the tree traffic from the first measured broadcast until
	// the end of the run.
	Upkeep  TreeUpkeep
	Stats   Stats
	SimTime time.Duration
}

// Run runs the scenario.
func (sc Steady) Run() (SteadyResult, error) {
	if sc.Broadcasts <= 0 {
		sc.Broadcasts = 100
	}
	if sc.Sources <= 0 {
		sc.Sources = 10
	}
	if sc.Interval <= 0 {
		sc.Interval = 250 * time.Millisecond
	}
	s, err := build(sc.Config, sc.Cluster)
	if err != nil {
		return SteadyResult{}, err
	}
	r := scenarioRand(s.cfg.Seed)
	live := s.LiveNodes()
	sources := make([]int, sc.Sources)
	for k := range sources {
		sources[k] = live[r.IntN(len(live))]
	}
	protos := []Protocol{Plumtree}
	if sc.Peers {
		protos = append(protos, Flood, Gossip)
	}
	var res SteadyResult
	var warm, measured []int
	for _, src := range sources {
		ids, err := s.broadcastAll(src, protos)
		if err != nil {
			return res, err
		}
		warm = append(warm, ids...)
		s.RunFor(sc.Interval)
	}
	res.Overlay = s.Overlay(0)
	upkeep := s.treeUpkeep()
	for range sc.Broadcasts {
		ids, err := s.broadcastAll(sources[r.IntN(len(sources))], protos)
		if err != nil {
			return res, err
		}
		measured = append(measured, ids...)
		s.RunFor(sc.Interval)
	}
	s.RunFor(drainTime)
	res.Upkeep = s.treeUpkeep().since(upkeep)
	for _, id := range warm {
		res.Warmup = append(res.Warmup, s.Result(id))
	}
	for _, id := range measured {
		res.Results = append(res.Results, s.Result(id))
	}
	res.Stats, res.SimTime = s.Stats(), s.Now()
	return res, nil
}

func (s *Simulator) broadcastAll(src int, protos []Protocol) ([]int, error) {
	ids := make([]int, 0, len(protos))
	for _, p := range protos {
		id, err := s.Broadcast(src, p)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// MassFailure kills a share of the nodes at once and keeps broadcasting.
type MassFailure struct {
	Config  Config
	Cluster Cluster
	// Fraction of the nodes killed at once (0.5: half).
	Fraction float64
	// Sources broadcast before the failure so that their trees exist
	// (default 10); after it, the surviving ones broadcast, one every
	// Interval (default 1 s), Broadcasts times (default 10).
	Sources    int
	Broadcasts int
	Interval   time.Duration
	// Limit bounds the wait for the overlay to heal (default 10 shuffle
	// periods).
	Limit time.Duration
	Peers bool
}

// MassFailureResult is what MassFailure measured. Times are since the
// failure; a negative time means it did not happen within Limit.
type MassFailureResult struct {
	Killed, Survivors int
	Results           []BroadcastResult // after the failure, in order
	// Connected: the survivors form one connected, symmetric overlay with
	// no link to a dead node.
	Connected time.Duration
	// Full: connected, and every survivor's active view is full (or, with
	// an odd number of free slots left, one short).
	Full time.Duration
	// LongestUnlinked is the longest stretch a survivor spent with an
	// empty active view while one of its passive peers was alive and
	// reachable (sampled every tick), and Unlinked how many survivors had
	// such a stretch at all: time a node could have spent linked.
	LongestUnlinked time.Duration
	Unlinked        int
	// LongestAlone is the longest stretch a survivor spent with an empty
	// active view, whatever its passive view held.
	LongestAlone time.Duration
	Before       Overlay
	After        Overlay // at the end
	Stats        Stats
	SimTime      time.Duration
}

// Run runs the scenario.
func (sc MassFailure) Run() (MassFailureResult, error) {
	if sc.Sources <= 0 {
		sc.Sources = 10
	}
	if sc.Broadcasts <= 0 {
		sc.Broadcasts = 10
	}
	if sc.Interval <= 0 {
		sc.Interval = time.Second
	}
	var res MassFailureResult
	if sc.Fraction <= 0 || sc.Fraction >= 1 {
		return res, fmt.Errorf("sim: failure fraction %v must be in (0, 1)", sc.Fraction)
	}
	s, err := build(sc.Config, sc.Cluster)
	if err != nil {
		return res, err
	}
	if sc.Limit <= 0 {
		sc.Limit = 10 * time.Duration(s.cfg.HyParView.ShuffleTicks) * s.cfg.Tick
	}
	protos := []Protocol{Plumtree}
	if sc.Peers {
		protos = append(protos, Flood, Gossip)
	}
	r := scenarioRand(s.cfg.Seed)
	live := s.LiveNodes()
	sources := make([]int, sc.Sources)
	for k := range sources {
		sources[k] = live[r.IntN(len(live))]
	}
	for _, src := range sources {
		if _, err := s.broadcastAll(src, protos); err != nil {
			return res, err
		}
		s.RunFor(sc.Interval)
	}
	s.RunFor(5 * time.Second)
	res.Before = s.Overlay(0)

	victims := slices.Clone(live)
	r.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
	victims = victims[:int(float64(len(victims))*sc.Fraction)]
	s.Crash(victims...)
	res.Killed, res.Survivors = len(victims), s.Live()
	failedAt := s.Now()

	var survivingSources []int
	for _, src := range sources {
		if s.Alive(src) {
			survivingSources = append(survivingSources, src)
		}
	}
	var ids []int
	var bcastErr error
	for k := range sc.Broadcasts {
		s.At(failedAt+time.Duration(k)*sc.Interval, func() {
			var src int
			if len(survivingSources) > 0 {
				src = survivingSources[r.IntN(len(survivingSources))]
			} else {
				alive := s.LiveNodes()
				src = alive[r.IntN(len(alive))]
			}
			got, err := s.broadcastAll(src, protos)
			if err != nil && bcastErr == nil {
				bcastErr = err
			}
			ids = append(ids, got...)
		})
	}
	res.Connected, res.Full = -1, -1
	bcastEnd := failedAt + time.Duration(sc.Broadcasts)*sc.Interval + drainTime
	end := max(failedAt+sc.Limit, bcastEnd)
	unlinked := newUnlinkedWatch(s)
	for s.Now() < end && (res.Full < 0 || s.Now() < bcastEnd) {
		s.RunFor(s.cfg.Tick)
		unlinked.sample()
		if res.Full >= 0 {
			continue
		}
		if !s.Connected() {
			continue
		}
		if res.Connected < 0 {
			res.Connected = s.Now() - failedAt
		}
		if s.viewsFull() {
			res.Full = s.Now() - failedAt
		}
	}
	if bcastErr != nil {
		return res, bcastErr
	}
	for _, id := range ids {
		res.Results = append(res.Results, s.Result(id))
	}
	res.After = s.Overlay(0)
	res.LongestUnlinked, res.Unlinked, res.LongestAlone = unlinked.longest, len(unlinked.seen), unlinked.longestAlone
	res.Stats, res.SimTime = s.Stats(), s.Now()
	return res, nil
}

// unlinkedWatch follows, tick by tick, the survivors left without a link
// while a passive peer of theirs was alive and reachable: HyParView should
// ask that peer at once, so any such stretch is a stranded node.
type unlinkedWatch struct {
	s     *Simulator
	since map[int32]time.Duration // nodes unlinked with a live passive peer now, and since when
	alone map[int32]time.Duration // nodes unlinked now, and since when
	seen  map[int32]bool          // nodes that were unlinked with a live passive peer at some tick
	// longest and longestAlone are the longest stretches in since and alone.
	longest, longestAlone time.Duration
}

func newUnlinkedWatch(s *Simulator) *unlinkedWatch {
	return &unlinkedWatch{s: s, since: make(map[int32]time.Duration), alone: make(map[int32]time.Duration), seen: make(map[int32]bool)}
}

func (w *unlinkedWatch) sample() {
	s := w.s
	for _, n := range s.nodes {
		if !n.alive || len(n.links) > 0 {
			delete(w.since, n.idx)
			delete(w.alone, n.idx)
			continue
		}
		// It was linked, or had no live passive peer, at the previous
		// sample: count from the tick before.
		w.longestAlone = max(w.longestAlone, s.Now()-streak(w.alone, n.idx, s.Now()-s.cfg.Tick))
		if !s.hasLivePassive(n) {
			delete(w.since, n.idx)
			continue
		}
		w.seen[n.idx] = true
		w.longest = max(w.longest, s.Now()-streak(w.since, n.idx, s.Now()-s.cfg.Tick))
	}
}

// streak returns when node i's current stretch in m began, starting it at
// from if it is new.
func streak(m map[int32]time.Duration, i int32, from time.Duration) time.Duration {
	start, ok := m[i]
	if !ok {
		m[i] = from
		return from
	}
	return start
}

// hasLivePassive reports whether one of n's passive peers is running on
// n's side of any partition.
func (s *Simulator) hasLivePassive(n *node) bool {
	for _, p := range n.hv.Passive() {
		q := s.index(p.Name)
		if s.nodes[q].alive && s.side[q] == s.side[n.idx] {
			return true
		}
	}
	return false
}

// viewsFull reports whether every live node's active view is full, but
// for nodes one short (a node whose passive peers are all full can only
// ask with low priority from ActiveSize-1, by design).
func (s *Simulator) viewsFull() bool {
	for _, n := range s.nodes {
		if n.alive && len(n.links) < s.cfg.HyParView.ActiveSize-1 {
			return false
		}
	}
	return true
}
