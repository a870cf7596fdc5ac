package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/membership/hyparview"
)

// Latency is a distribution of one-way message delays. The simulator draws
// one delay per message from the network's random source; messages on one
// overlay link still arrive in the order they were sent, as over TCP.
type Latency interface {
	Sample(r *rand.Rand) time.Duration
	fmt.Stringer
}

// Constant is a latency that never varies.
type Constant time.Duration

// Sample implements Latency.
func (c Constant) Sample(*rand.Rand) time.Duration { return time.Duration(c) }

func (c Constant) String() string { return fmt.Sprintf("constant %v", time.Duration(c)) }

// Uniform is a latency drawn uniformly from [Min, Max].
type Uniform struct{ Min, Max time.Duration }

// Sample implements Latency.
func (u Uniform) Sample(r *rand.Rand) time.Duration {
	if u.Max <= u.Min {
		return u.Min
	}
	return u.Min + time.Duration(r.Int64N(int64(u.Max-u.Min)+1))
}

func (u Uniform) String() string { return fmt.Sprintf("uniform %v..%v", u.Min, u.Max) }

// LogNormal is a long-tailed latency: Median times e^(Sigma*N(0,1)), capped
// at Max (no cap when Max is 0). It models a network whose typical delay is
// small but where a few messages take many times as long.
type LogNormal struct {
	Median time.Duration
	Sigma  float64
	Max    time.Duration
}

// Sample implements Latency.
func (l LogNormal) Sample(r *rand.Rand) time.Duration {
	d := time.Duration(float64(l.Median) * math.Exp(l.Sigma*r.NormFloat64()))
	if l.Max > 0 && d > l.Max {
		d = l.Max
	}
	return d
}

func (l LogNormal) String() string {
	return fmt.Sprintf("lognormal median %v sigma %.2f max %v", l.Median, l.Sigma, l.Max)
}

// Config describes a simulated network and the protocol configuration every
// node runs. The zero value of a field takes the default DefaultConfig gives.
type Config struct {
	// Seed seeds the one random source the network draws from; every
	// node's state machines get their own source derived from it. The same
	// Seed and the same calls give the same run, bit for bit.
	Seed uint64

	// Tick is the simulated length of one tick of the membership core, as
	// its driver's (100 ms by default).
	Tick time.Duration
	// BroadcastTick is the length of one tick of the broadcast core and the
	// registry's replica, as the broadcast driver's (plumtree.DefaultTick
	// by default). It is Plumtree.Tick unless that is set.
	BroadcastTick time.Duration
	// Latency is the one-way delay of a message. Opening a short-lived
	// connection (a HyParView message to a peer outside the active view)
	// costs one more delay for the connection setup.
	Latency Latency
	// Loss is the probability that a message is lost in transit, silently
	// (no failure is reported). 0 models TCP, which retransmits.
	Loss float64
	// CloseDetect is how long after a node crashes its linked peers learn
	// that the connection closed. 0 means one latency draw (the FIN or RST
	// travels like any packet).
	CloseDetect time.Duration
	// KeepAliveTimeout is how long a silent link stays up before the driver
	// declares it failed: what a partition costs, since no FIN crosses it.
	// Default 1.5 s, the membership driver's 500 ms keepalive times three.
	KeepAliveTimeout time.Duration
	// DialTimeout is how long a connection attempt across a partition takes
	// to fail. Default 1 s.
	DialTimeout time.Duration
	// RejoinTicks spaces the rejoin attempts of an isolated node through a
	// random member (hyparview.Config.RejoinTicks). Default 10.
	RejoinTicks int
	// MixInterval is the overlay policy's mixing period
	// (hyparview.Config.MixTicks): the cluster makes about two Mix links
	// per period; they join the parts of an overlay split by a healed
	// partition. Default 30 s, the driver's; negative turns mixing off.
	MixInterval time.Duration
	// DetectDelay is how long the memberlist stand-in takes to declare a
	// crashed node, or the far side of a partition, failed. Default 10 s
	// (memberlist's LAN suspicion at 1,000 nodes is about 12 s).
	DetectDelay time.Duration
	// MergeDelay is how long after a successful reconnect two member views
	// become one (memberlist's push-pull and gossip). Default 1 s.
	MergeDelay time.Duration
	// ReconnectInterval and ReconnectTimeout are the overlay policy's
	// reconnect period and how long a failed member is retried
	// (hyparview.Config.ReconnectTicks and ReconnectTimeoutTicks):
	// defaults 2 s and 1 h, as the membership driver's.
	ReconnectInterval time.Duration
	ReconnectTimeout  time.Duration

	// HyParView configures every node's membership core. Zero: the
	// package default (hyparview.DefaultConfig).
	HyParView hyparview.Config
	// Plumtree configures every node's broadcast core; Self and Rand are set
	// per node. Zero fields take the broadcast package's defaults.
	Plumtree plumtree.Config

	// Gossip configures the memberlist-style peer protocol.
	Gossip GossipConfig
}

// GossipConfig is the memberlist-style broadcast the simulator runs beside
// Plumtree: every node that learns a message queues it in a queue from
// NewQueue and, every Interval, sends its queue to Fanout random nodes,
// until each message went out RetransmitMult * ceil(log10(n+1)) times
// (memberlist's LAN defaults: 200 ms, 3, 4).
type GossipConfig struct {
	// NewQueue makes one node's queue. The simulator itself runs only the
	// system's pure packages, so memberlist's own queue comes from outside:
	// package sim/memberlistpeer provides it (cpgsim sets it). Without it
	// the gossip peer does not run.
	NewQueue func(numNodes func() int, retransmitMult int) GossipQueue

	Interval       time.Duration
	Fanout         int
	RetransmitMult int
	// ToTheDead is how long a crashed node remains a gossip target:
	// memberlist keeps gossiping to dead nodes for GossipToTheDeadTime
	// (30 s on a LAN), after its own detection delay.
	ToTheDead time.Duration
}

// DefaultConfig returns the defaults: the drivers' ticks (100 ms for the
// membership core, plumtree.DefaultTick for the broadcast), latency uniform in
// 1..5 ms, no loss, gen_hypar's HyParView options, the broadcast package's
// Plumtree defaults, and memberlist's LAN gossip.
func DefaultConfig() Config {
	return Config{
		Seed:              1,
		Tick:              100 * time.Millisecond,
		BroadcastTick:     plumtree.DefaultTick,
		Latency:           Uniform{Min: time.Millisecond, Max: 5 * time.Millisecond},
		KeepAliveTimeout:  1500 * time.Millisecond,
		DialTimeout:       time.Second,
		RejoinTicks:       10,
		MixInterval:       30 * time.Second,
		DetectDelay:       10 * time.Second,
		MergeDelay:        time.Second,
		ReconnectInterval: 2 * time.Second,
		ReconnectTimeout:  time.Hour,
		HyParView:         hyparview.DefaultConfig(),
		Gossip: GossipConfig{
			Interval:       200 * time.Millisecond,
			Fanout:         3,
			RetransmitMult: 4,
			ToTheDead:      30 * time.Second,
		},
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Tick <= 0 {
		c.Tick = d.Tick
	}
	if c.BroadcastTick <= 0 {
		c.BroadcastTick = d.BroadcastTick
	}
	if c.Plumtree.Tick <= 0 {
		c.Plumtree.Tick = c.BroadcastTick
	}
	if c.Latency == nil {
		c.Latency = d.Latency
	}
	if c.KeepAliveTimeout <= 0 {
		c.KeepAliveTimeout = d.KeepAliveTimeout
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.RejoinTicks <= 0 {
		c.RejoinTicks = d.RejoinTicks
	}
	if c.MixInterval == 0 {
		c.MixInterval = d.MixInterval
	}
	if c.HyParView == (hyparview.Config{}) {
		c.HyParView = d.HyParView
	}
	if c.DetectDelay <= 0 {
		c.DetectDelay = d.DetectDelay
	}
	if c.MergeDelay <= 0 {
		c.MergeDelay = d.MergeDelay
	}
	if c.ReconnectInterval <= 0 {
		c.ReconnectInterval = d.ReconnectInterval
	}
	if c.ReconnectTimeout <= 0 {
		c.ReconnectTimeout = d.ReconnectTimeout
	}
	// The overlay policy runs in the core, in ticks.
	ticks := func(t time.Duration) int { return max(1, int(t/c.Tick)) }
	if c.HyParView.MixTicks == 0 {
		c.HyParView.MixTicks = -1
		if c.MixInterval > 0 {
			c.HyParView.MixTicks = ticks(c.MixInterval)
		}
	}
	if c.HyParView.RejoinTicks == 0 {
		c.HyParView.RejoinTicks = c.RejoinTicks
	}
	if c.HyParView.ReconnectTicks == 0 {
		c.HyParView.ReconnectTicks = ticks(c.ReconnectInterval)
	}
	if c.HyParView.ReconnectTimeoutTicks == 0 {
		c.HyParView.ReconnectTimeoutTicks = ticks(c.ReconnectTimeout)
	}
	if c.Gossip.Interval <= 0 {
		c.Gossip.Interval = d.Gossip.Interval
	}
	if c.Gossip.Fanout <= 0 {
		c.Gossip.Fanout = d.Gossip.Fanout
	}
	if c.Gossip.RetransmitMult <= 0 {
		c.Gossip.RetransmitMult = d.Gossip.RetransmitMult
	}
	if c.Gossip.ToTheDead <= 0 {
		c.Gossip.ToTheDead = d.Gossip.ToTheDead
	}
	switch {
	case c.Loss < 0 || c.Loss >= 1:
		return c, fmt.Errorf("sim: Loss %v must be in [0, 1)", c.Loss)
	case c.CloseDetect < 0:
		return c, errors.New("sim: CloseDetect must not be negative")
	}
	if err := c.HyParView.Validate(); err != nil {
		return c, fmt.Errorf("sim: %w", err)
	}
	return c, nil
}
