package hyparview

import "fmt"

// Config tunes the HyParView core. Field names follow gen_hypar's options
// (active_size, passive_size, arwl, prwl, k_active, k_passive,
// shuffle_period); time is counted in ticks of the driver's clock.
type Config struct {
	ActiveSize  int // active view capacity: peers with an open link (gen_hypar active_size, 5)
	PassiveSize int // passive view capacity: spare contacts (passive_size, 30)
	ARWL        int // active random walk length: FORWARD_JOIN and SHUFFLE time to live (arwl, 6)
	PRWL        int // passive random walk length: the hop at which a FORWARD_JOIN leaves the joiner in the passive view (prwl, 3)
	KActive     int // active peers sent in a SHUFFLE (k_active, 3)
	KPassive    int // passive peers sent in a SHUFFLE (k_passive, 4)

	// HighPriorityBelow: a node with fewer active peers than this asks its
	// passive peers with high-priority NEIGHBOR requests, which a full peer
	// accepts by evicting one of its own. The paper asks with high priority
	// only from an empty view (1); then nodes that lost two or more links
	// among full neighbours stay short for good (200 nodes: a few end with 1
	// to 3 of 5). With ActiveSize-1 every node ends with at least
	// ActiveSize-1: an evicted node drops to ActiveSize-1 and asks with low
	// priority from there, so evictions cannot cascade. Zero means
	// ActiveSize-1, the default; an empty view always asks with high
	// priority.
	HighPriorityBelow int

	// ShuffleTicks is the shuffle period (gen_hypar shuffle_period, 10 s):
	// 100 ticks of the driver's default 100 ms tick.
	ShuffleTicks int
	// NeighborTimeoutTicks bounds how long a JOIN or NEIGHBOR request waits
	// for its reply before the attempt counts as failed.
	NeighborTimeoutTicks int
	// BackoffTicks is how long a peer that refused us or disconnected us is
	// left out of the promotion candidates, so that two full nodes do not
	// evict and re-request each other in a loop.
	BackoffTicks int

	// The overlay policy (see Protocol.SetDirectory); zero takes the
	// default.
	//
	// MixTicks is the mixing period: the cluster makes about two Mix links
	// per period (default 300, 30 s at 100 ms ticks); negative turns
	// mixing off.
	MixTicks int
	// RejoinTicks spaces the rejoins of an isolated node (default 10).
	RejoinTicks int
	// ReconnectTicks is how often a node may ask its driver to reach a
	// failed member again (default 20, 2 s: Serf's 30 s leaves a healed
	// partition of a small cluster apart for tens of seconds), and
	// ReconnectTimeoutTicks how long a failed member is retried (default
	// 36,000, an hour).
	ReconnectTicks        int
	ReconnectTimeoutTicks int
}

// DefaultConfig returns gen_hypar's defaults, with the shuffle period
// expressed for a 100 ms tick.
func DefaultConfig() Config {
	return Config{
		ActiveSize:           5,
		PassiveSize:          30,
		ARWL:                 6,
		PRWL:                 3,
		KActive:              3,
		KPassive:             4,
		ShuffleTicks:         100,
		NeighborTimeoutTicks: 20,
		BackoffTicks:         100,
	}
}

// Validate reports the first field that cannot work.
func (c Config) Validate() error {
	switch {
	case c.ActiveSize < 1:
		return fmt.Errorf("membership: ActiveSize %d must be at least 1", c.ActiveSize)
	case c.PassiveSize < 0:
		return fmt.Errorf("membership: PassiveSize %d must not be negative", c.PassiveSize)
	case c.ARWL < 0:
		return fmt.Errorf("membership: ARWL %d must not be negative", c.ARWL)
	case c.PRWL < 0 || c.PRWL > c.ARWL:
		return fmt.Errorf("membership: PRWL %d must be between 0 and ARWL %d", c.PRWL, c.ARWL)
	case c.KActive < 0 || c.KPassive < 0:
		return fmt.Errorf("membership: KActive %d and KPassive %d must not be negative", c.KActive, c.KPassive)
	case c.KActive+c.KPassive+1 > maxShufflePeers:
		return fmt.Errorf("membership: KActive+KPassive+1 = %d exceeds the %d peers a shuffle carries", c.KActive+c.KPassive+1, maxShufflePeers)
	case c.HighPriorityBelow < 0 || c.HighPriorityBelow > c.ActiveSize:
		return fmt.Errorf("membership: HighPriorityBelow %d must be between 0 and ActiveSize %d: full nodes would evict each other", c.HighPriorityBelow, c.ActiveSize)
	case c.ShuffleTicks < 1:
		return fmt.Errorf("membership: ShuffleTicks %d must be at least 1", c.ShuffleTicks)
	case c.NeighborTimeoutTicks < 1:
		return fmt.Errorf("membership: NeighborTimeoutTicks %d must be at least 1", c.NeighborTimeoutTicks)
	case c.RejoinTicks < 0 || c.ReconnectTicks < 0 || c.ReconnectTimeoutTicks < 0:
		return fmt.Errorf("membership: RejoinTicks %d, ReconnectTicks %d and ReconnectTimeoutTicks %d must not be negative", c.RejoinTicks, c.ReconnectTicks, c.ReconnectTimeoutTicks)
	case c.BackoffTicks < 0:
		return fmt.Errorf("membership: BackoffTicks %d must not be negative", c.BackoffTicks)
	}
	return nil
}

// highPriorityBelow is HighPriorityBelow with its zero value resolved.
func (c Config) highPriorityBelow() int {
	if c.HighPriorityBelow == 0 {
		return max(1, c.ActiveSize-1)
	}
	return c.HighPriorityBelow
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

func (c Config) mixTicks() int              { return orDefault(c.MixTicks, 300) }
func (c Config) rejoinTicks() int           { return orDefault(c.RejoinTicks, 10) }
func (c Config) reconnectTicks() int        { return orDefault(c.ReconnectTicks, 20) }
func (c Config) reconnectTimeoutTicks() int { return orDefault(c.ReconnectTimeoutTicks, 36000) }
