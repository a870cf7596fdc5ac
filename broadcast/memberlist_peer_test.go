package broadcast

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cpggo/cpg/internal/wire"
	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// peerBenchEnv turns on the side-by-side measurement of memberlist's own
// gossip broadcast; it takes tens of seconds, too long for every test run.
const peerBenchEnv = "CPG_PEER_BENCH"

// TestMemberlistGossipPeer measures hashicorp/memberlist's own gossip
// broadcast on the shape of TestNodeOverTCP: 20 nodes on loopback, 1,000
// broadcasts of a 64-byte payload from random nodes, sent 2 ms apart. Each
// node relays a broadcast the first time it receives it, through a
// memberlist.TransmitLimitedQueue, as memberlist's users (serf, consul) do:
// memberlist piggybacks queued messages on its probes and sends them to
// GossipNodes random members every GossipInterval, each at most
// RetransmitMult*ceil(log10(n+1)) times per node. It logs delivery
// reliability, payload copies received per broadcast, RMR = copies/(n-1) - 1,
// and latency from the send to each delivery.
func TestMemberlistGossipPeer(t *testing.T) {
	if os.Getenv(peerBenchEnv) == "" {
		t.Skipf("a peer measurement of about half a minute; set %s=1 to run it", peerBenchEnv)
	}
	const (
		n          = 20
		broadcasts = 1000
		warmup     = 100 // as in TestNodeOverTCP, for a like-for-like figure
		payloadLen = 64
		pace       = 2 * time.Millisecond
	)
	began := time.Now()
	before := goleak.IgnoreCurrent()
	rec := newPeerRecorder(n, broadcasts)
	members := make([]*memberlist.Memberlist, n)
	delegates := make([]*peerDelegate, n)
	defer func() {
		var wg sync.WaitGroup
		for _, m := range members {
			if m != nil {
				wg.Go(func() { _ = m.Shutdown() })
			}
		}
		wg.Wait()
		// Shutdown does not wait for a probe in flight; its goroutine ends
		// when the probe times out.
		deadline := time.Now().Add(10 * time.Second)
		for err := goleak.Find(before); err != nil; err = goleak.Find(before) {
			if time.Now().After(deadline) {
				t.Error(err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	var cfg *memberlist.Config
	for i := range members {
		d := &peerDelegate{node: i, rec: rec}
		cfg = peerMemberlistConfig(fmt.Sprintf("ml%02d", i), d)
		m, err := memberlist.Create(cfg)
		require.NoError(t, err)
		d.setQueue(m, cfg.RetransmitMult)
		members[i], delegates[i] = m, d
	}
	for i := 1; i < n; i++ {
		contact := members[(i*7)%i].LocalNode().FullAddress().Addr
		_, err := members[i].Join([]string{contact})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		for _, m := range members {
			if m.NumMembers() != n {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "every memberlist sees every member")
	// Let memberlist's own alive messages finish their retransmits: they
	// go before user messages in every packet.
	time.Sleep(2 * time.Second)
	t.Logf("memberlist LAN defaults for gossip: GossipInterval %v, GossipNodes %d, ProbeInterval %v, RetransmitMult %d (limit %d sends per node per message), UDPBufferSize %d; loopback: ProbeTimeout %v, TCPTimeout %v, SuspicionMult %d, PushPullInterval %v",
		cfg.GossipInterval, cfg.GossipNodes, cfg.ProbeInterval, cfg.RetransmitMult,
		cfg.RetransmitMult*int(math.Ceil(math.Log10(float64(n+1)))), cfg.UDPBufferSize,
		cfg.ProbeTimeout, cfg.TCPTimeout, cfg.SuspicionMult, cfg.PushPullInterval)
	t.Logf("cluster of %d formed in %v", n, time.Since(began).Round(time.Millisecond))

	rng := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, payloadLen)
	sendStart := time.Now()
	rec.start(sendStart)
	for id := range broadcasts {
		src := rng.IntN(n)
		if id < n {
			src = id // every node originates, as in TestNodeOverTCP's warm-up
		}
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		rec.sent(src, id)
		delegates[src].enqueue(wire.AppendUvarint(nil, uint64(id)), payload)
		time.Sleep(pace)
	}
	sendTime := time.Since(sendStart)

	// Copies keep arriving until every queue has spent its retransmits.
	// Once every queue has stayed empty for two gossip rounds nothing more
	// is in flight: every copy is counted and a node that still lacks a
	// broadcast will never get it.
	drained := waitDrained(t, delegates, 2*cfg.GossipInterval, 90*time.Second)
	drainedAfter := drained.Sub(sendStart)
	r := rec.report(warmup)
	require.Zero(t, r.malformed, "every payload copy decodes")
	rmr := func(copiesPerBroadcast float64) float64 { return copiesPerBroadcast/float64(n-1) - 1 }
	t.Logf("n=%d broadcasts=%d payload=%dB sent every %v (sending took %v)", n, broadcasts, payloadLen, pace, sendTime.Round(time.Millisecond))
	t.Logf("reliability %.5f (%d of %d node-broadcast pairs); last delivery %v after the first send; queues drained %v after the first send",
		r.reliability, r.delivered, n*broadcasts, r.lastDelivery.Round(time.Millisecond), drainedAfter.Round(time.Millisecond))
	t.Logf("payload copies received %d: %.2f per broadcast, RMR %.4f overall; after the first %d broadcasts %.2f per broadcast, RMR %.4f; duplicates %d",
		r.copies, r.perBroadcast, rmr(r.perBroadcast), warmup, r.perBroadcastAfterWarmup, rmr(r.perBroadcastAfterWarmup), r.duplicates)
	t.Logf("latency from send to delivery (excluding the origin): p50 %v, p99 %v, max %v",
		r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.max.Round(time.Millisecond))
	t.Logf("wall time %v", time.Since(began).Round(time.Millisecond))
	require.GreaterOrEqual(t, r.reliability, 0.99, "memberlist's gossip reaches nearly every node")
}

// waitDrained waits until every delegate's queue has been empty for quiet
// and returns when they last became empty; the test fails after limit.
func waitDrained(t *testing.T, delegates []*peerDelegate, quiet, limit time.Duration) time.Time {
	deadline := time.Now().Add(limit)
	var emptySince time.Time
	for {
		now := time.Now()
		busy := slices.ContainsFunc(delegates, func(d *peerDelegate) bool { return d.queue.Load().NumQueued() > 0 })
		switch {
		case busy:
			emptySince = time.Time{}
		case emptySince.IsZero():
			emptySince = now
		case now.Sub(emptySince) >= quiet:
			return emptySince
		}
		require.True(t, now.Before(deadline), "memberlist's broadcast queues did not drain in %v", limit)
		time.Sleep(10 * time.Millisecond)
	}
}

// peerMemberlistConfig is memberlist.DefaultLANConfig on 127.0.0.1 with an
// ephemeral port. The failure-detection timeouts are tightened for loopback
// as membership.LoopbackGossipConfig does; the probe and gossip timers, which
// carry the broadcasts, keep memberlist's defaults so this is memberlist as
// its users run it.
func peerMemberlistConfig(name string, d memberlist.Delegate) *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.Name = name
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.AdvertisePort = 0
	c.LogOutput = io.Discard
	c.Delegate = d
	c.ProbeTimeout = 100 * time.Millisecond
	c.TCPTimeout = 2 * time.Second
	c.SuspicionMult = 3
	c.PushPullInterval = 5 * time.Second
	c.DeadNodeReclaimTime = time.Second
	return c
}

// peerDelegate is one node's memberlist.Delegate: it hands memberlist the
// queued broadcasts and relays each one the first time it arrives.
type peerDelegate struct {
	node int
	rec  *peerRecorder
	// queue is set once memberlist.Create has returned the instance whose
	// member count sizes the retransmit limit; memberlist's goroutines
	// read it from then on.
	queue atomic.Pointer[memberlist.TransmitLimitedQueue]
}

func (d *peerDelegate) setQueue(m *memberlist.Memberlist, retransmitMult int) {
	d.queue.Store(&memberlist.TransmitLimitedQueue{NumNodes: m.NumMembers, RetransmitMult: retransmitMult})
}

func (d *peerDelegate) enqueue(header, payload []byte) {
	d.queue.Load().QueueBroadcast(peerBroadcast(append(header, payload...)))
}

func (d *peerDelegate) NodeMeta(int) []byte { return nil }

func (d *peerDelegate) NotifyMsg(msg []byte) {
	dec := wire.NewDecoder(msg)
	id := dec.Uvarint()
	if dec.Err() != nil || !d.rec.received(d.node, id) {
		return
	}
	// memberlist reuses msg after NotifyMsg returns.
	d.queue.Load().QueueBroadcast(peerBroadcast(slices.Clone(msg)))
}

func (d *peerDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	q := d.queue.Load()
	if q == nil {
		return nil
	}
	return q.GetBroadcasts(overhead, limit)
}

func (d *peerDelegate) LocalState(bool) []byte { return nil }

func (d *peerDelegate) MergeRemoteState([]byte, bool) {}

// peerBroadcast is a message id followed by its payload. Every one is
// distinct, so the queue need not compare it with the others.
type peerBroadcast []byte

func (b peerBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b peerBroadcast) Message() []byte                       { return b }
func (b peerBroadcast) Finished()                             {}
func (b peerBroadcast) UniqueBroadcast()                      {}

// peerRecorder counts every payload copy each node receives and when each
// node first delivered each broadcast.
type peerRecorder struct {
	mu        sync.Mutex
	t0        time.Time
	sentAt    []time.Duration   // by id, since t0
	origin    []int             // by id
	at        [][]time.Duration // [node][id] first delivery since t0; -1: not yet
	copies    []int             // by id
	delivered int
	malformed int
}

func newPeerRecorder(nodes, broadcasts int) *peerRecorder {
	r := &peerRecorder{
		sentAt: make([]time.Duration, broadcasts),
		origin: make([]int, broadcasts),
		at:     make([][]time.Duration, nodes),
		copies: make([]int, broadcasts),
	}
	for i := range r.at {
		r.at[i] = make([]time.Duration, broadcasts)
		for j := range r.at[i] {
			r.at[i][j] = -1
		}
	}
	return r
}

func (r *peerRecorder) start(t0 time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t0 = t0
}

// sent records the origin's own delivery.
func (r *peerRecorder) sent(node, id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Since(r.t0)
	r.sentAt[id], r.origin[id] = now, node
	r.at[node][id] = now
	r.delivered++
}

// received counts a copy and reports whether it is node's first of id.
func (r *peerRecorder) received(node int, id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id >= uint64(len(r.copies)) {
		r.malformed++
		return false
	}
	r.copies[id]++
	if r.at[node][id] >= 0 {
		return false
	}
	r.at[node][id] = time.Since(r.t0)
	r.delivered++
	return true
}

type peerReport struct {
	delivered, copies, duplicates, malformed int
	reliability                              float64
	perBroadcast, perBroadcastAfterWarmup    float64
	lastDelivery, p50, p99, max              time.Duration
}

func (r *peerRecorder) report(warmup int) peerReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := peerReport{delivered: r.delivered, malformed: r.malformed}
	broadcasts := len(r.copies)
	p.reliability = float64(r.delivered) / float64(len(r.at)*broadcasts)
	afterWarmup := 0
	for id, c := range r.copies {
		p.copies += c
		if id >= warmup {
			afterWarmup += c
		}
	}
	p.duplicates = p.copies - (r.delivered - broadcasts)
	p.perBroadcast = float64(p.copies) / float64(broadcasts)
	p.perBroadcastAfterWarmup = float64(afterWarmup) / float64(broadcasts-warmup)
	var latencies []time.Duration
	for node, row := range r.at {
		for id, at := range row {
			if at < 0 || node == r.origin[id] {
				continue
			}
			p.lastDelivery = max(p.lastDelivery, at)
			latencies = append(latencies, at-r.sentAt[id])
		}
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		p.p50 = latencies[len(latencies)/2]
		p.p99 = latencies[len(latencies)*99/100]
		p.max = latencies[len(latencies)-1]
	}
	return p
}
