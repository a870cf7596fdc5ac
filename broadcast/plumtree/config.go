package plumtree

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// DefaultTick is the tick the drivers run by default. It is short because
// the repair of a payload that reached a node only as an announcement waits
// for a graft timeout counted in ticks, after the announcement's flush: at
// 10 ms a repair on a LAN takes 30 to 90 ms, where a 100 ms tick made it
// 200 to 400 ms, longer than the rest of a 2,000-join burst.
const DefaultTick = 10 * time.Millisecond

// Config holds every timer, threshold and bound of a Plumtree. Durations are
// in ticks. The graft timers (timeout and retry) are counted in ticks of
// whatever length; the other defaults are durations, turned into ticks with
// Tick. A zero field takes its default.
type Config struct {
	// Self is this node's name, unique in the cluster. Required.
	Self string
	// Rand drives every random choice (the peer and the time of a periodic
	// exchange).
	// Default: a generator seeded from Self, so runs are reproducible.
	Rand *rand.Rand
	// Tick is the length of the driver's tick. The protocol reads no clock;
	// Tick only turns the defaults that are durations into ticks.
	// Default DefaultTick.
	Tick time.Duration

	// LazyFlushTicks is how often queued announcements go out as one
	// batched IHAVE per peer. Default 50 ms: changes a few milliseconds
	// apart share one announcement per lazy peer (at every tick, each
	// change cost every node a write per lazy peer), while a lost copy is
	// still repaired within 30 to 90 ms on a LAN.
	LazyFlushTicks int
	// GraftTimeoutTicks is how long a node waits, after the first
	// announcement of a payload it lacks, for the payload to arrive on the
	// tree before it grafts the announcer. Default 3 (30 ms at the default
	// tick): a few lazy flushes, so the eager copy usually wins and no graft
	// is needed, yet a lost copy costs a LAN only tens of milliseconds.
	GraftTimeoutTicks int
	// GraftRetryTicks is the wait before grafting the next announcer when a
	// graft went unanswered. Default 2, shorter than the first timeout as in
	// the paper: by then the payload is known to be late.
	GraftRetryTicks int
	// OptimizationThreshold is the hop difference between the eager
	// delivery and an announcement (or a later copy) at which the shorter
	// link replaces the eager one. A node then sits at most this many hops
	// below its closest neighbour, so the paper's 3 lets a tree grow up to
	// three times as deep as the overlay: at 10,000 nodes with random
	// latency the deepest deliveries reached 1.75 times the overlay's
	// depth, and still 1.625 with 2. Default 1: the tree settles on shortest
	// paths (a swap never lengthens one, so it does settle), at the cost of
	// a graft and a prune per node whose path a link change lengthened.
	OptimizationThreshold int
	// DisableOptimization turns off the link swap above.
	DisableOptimization bool

	// ExchangeTicks is the mean period of anti-entropy with one random
	// neighbour. Each period is drawn from Rand within half of it either
	// side (and the first within one period from the start), so that
	// nodes do not all exchange on the same tick. Default 10 s (as
	// riak_core's exchange_tick_period).
	ExchangeTicks int
	// MaxExchanges bounds the periodic exchanges this node runs at once.
	// Exchanges opened on a new link are not limited. Default 1.
	MaxExchanges int
	// MaxTrackedExchanges bounds the exchanges, opened here or by peers,
	// that this node follows at once; a peer's exchange beyond it is refused
	// (and counted), so peers cannot make it hold unbounded state.
	// Default 256.
	MaxTrackedExchanges int
	// ExchangeTimeoutTicks ends an exchange that has been silent this long.
	// Default 5 s.
	ExchangeTimeoutTicks int
	// MaxExchangeSteps bounds the messages of one exchange, so two handlers
	// can never ping-pong forever. Default 8 (a digest/delta exchange needs 3,
	// a hashed one, comparing bucket hashes first, 5).
	MaxExchangeSteps int

	// MissingTTLTicks is how long a node remembers the announcements of a
	// payload it lacks; after that anti-entropy must repair it. Default 10 s.
	MissingTTLTicks int
	// MaxMissing bounds the payloads being waited for; announcements of
	// further ones are dropped (and counted). Default 4096.
	MaxMissing int
	// MaxAnnouncers bounds the announcers remembered per missing payload.
	// Default 8.
	MaxAnnouncers int
	// LazyQueueLimit bounds the announcements queued for one peer between
	// flushes; later ones are dropped (and counted). Default 4096.
	LazyQueueLimit int

	// RecentTTLTicks and MaxRecent bound the record of recent deliveries
	// (round, eager sender, payload) used for the optimisation and to answer
	// a graft when the handler cannot. Defaults 10 s and 4096 entries.
	RecentTTLTicks int
	MaxRecent      int
	// RecentPayloadBytes bounds the payload bytes kept in that record.
	// Default 8 MiB. DisablePayloadCache keeps none.
	RecentPayloadBytes  int
	DisablePayloadCache bool

	// MaxTrees bounds the per-root trees kept. Every node of a registry is a
	// root, and a tree costs about a hundred bytes (its root's name, an index
	// entry and a bitmask of lazy links), so the default, 65,536, keeps
	// every root of a 10,000-node cluster in about a megabyte. Beyond it a
	// tree not used lately is evicted, and the next new tree starts from its
	// links rather than all-eager, so it does not flood the overlay again.
	MaxTrees int
	// TreeQueryTicks is the time budget of a tree query; each level of the
	// tree takes one tick off, so it also bounds the depth explored.
	// Default 3 s.
	TreeQueryTicks int
	// MaxTreeQueries bounds the tree queries in progress. Default 16.
	MaxTreeQueries int
}

// ErrNoSelf reports a Config without a node name.
var ErrNoSelf = errors.New("plumtree: Config.Self is empty")

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() (Config, error) {
	if c.Self == "" {
		return c, ErrNoSelf
	}
	if len(c.Self) > MaxNameLen {
		return c, fmt.Errorf("plumtree: Config.Self is %d bytes, over the %d-byte limit", len(c.Self), MaxNameLen)
	}
	if c.Rand == nil {
		h := fnv.New64a()
		h.Write([]byte(c.Self))
		c.Rand = rand.New(rand.NewPCG(h.Sum64(), 0x9e3779b97f4a7c15))
	}
	if c.Tick <= 0 {
		c.Tick = DefaultTick
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	ticks := func(d time.Duration) int { return TicksOf(d, c.Tick) }
	def(&c.LazyFlushTicks, ticks(50*time.Millisecond))
	def(&c.GraftTimeoutTicks, 3)
	def(&c.GraftRetryTicks, 2)
	def(&c.OptimizationThreshold, 1)
	def(&c.ExchangeTicks, ticks(10*time.Second))
	def(&c.MaxExchanges, 1)
	def(&c.ExchangeTimeoutTicks, ticks(5*time.Second))
	def(&c.MaxTrackedExchanges, 256)
	def(&c.MaxExchangeSteps, 8)
	def(&c.MissingTTLTicks, ticks(10*time.Second))
	def(&c.MaxMissing, 4096)
	def(&c.MaxAnnouncers, 8)
	def(&c.LazyQueueLimit, 4096)
	def(&c.RecentTTLTicks, ticks(10*time.Second))
	def(&c.MaxRecent, 4096)
	def(&c.RecentPayloadBytes, 8<<20)
	def(&c.MaxTrees, 1<<16)
	def(&c.TreeQueryTicks, ticks(3*time.Second))
	def(&c.MaxTreeQueries, 16)
	return c, nil
}

// TicksOf is d in ticks of length tick, rounded up and at least one: a
// timer never fires sooner than asked, and never on the tick it was set.
func TicksOf(d, tick time.Duration) int {
	if tick <= 0 {
		tick = DefaultTick
	}
	return max(1, int((d+tick-1)/tick))
}
