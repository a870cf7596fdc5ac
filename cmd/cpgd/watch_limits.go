package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cpggo/cpg/registry"
	"github.com/prometheus/client_golang/prometheus"
)

// watchConfig is the agent's flags for watch streams.
type watchConfig struct {
	heartbeat    time.Duration
	writeTimeout time.Duration
	writes       int
	maxWatches   int
	maxPerClient int
	journal      int
}

func (c *watchConfig) flags(fs *flag.FlagSet, env *apiLimits) {
	fs.DurationVar(&c.heartbeat, "watch-heartbeat", env.envDuration("CPGD_WATCH_HEARTBEAT", 15*time.Second), "interval of the heartbeat comment on every watch stream [CPGD_WATCH_HEARTBEAT]")
	fs.DurationVar(&c.writeTimeout, "watch-write-timeout", env.envDuration("CPGD_WATCH_WRITE_TIMEOUT", 5*time.Second), "a watch stream whose client takes longer to accept a write is cut off [CPGD_WATCH_WRITE_TIMEOUT]")
	fs.IntVar(&c.writes, "watch-writes", int(env.envInt("CPGD_WATCH_WRITES", 100000)), "writes per second all watch streams together aim at: a stream waits at least (open streams / this) between two writes, and changes that come faster go out together (0: each at once) [CPGD_WATCH_WRITES]")
	fs.IntVar(&c.maxWatches, "max-watches", int(env.envInt("CPGD_MAX_WATCHES", 10000)), "most watch streams open at once; past it a watch is answered 429 [CPGD_MAX_WATCHES]")
	fs.IntVar(&c.maxPerClient, "max-watches-per-client", int(env.envInt("CPGD_MAX_WATCHES_PER_CLIENT", 100)), "most watch streams open at once from one client IP address; past it a watch is answered 429 [CPGD_MAX_WATCHES_PER_CLIENT]")
	fs.IntVar(&c.journal, "watch-journal", int(env.envInt("CPGD_WATCH_JOURNAL", registry.DefaultWatchBuffer)), "recent changes kept per watched scope: how far a watcher may fall behind, and how far back Last-Event-ID resumes [CPGD_WATCH_JOURNAL]")
}

func (c *watchConfig) check() error {
	switch {
	case c.heartbeat <= 0 || c.writeTimeout <= 0:
		return fmt.Errorf("%w: --watch-heartbeat and --watch-write-timeout must be positive", errUsage)
	case c.writes < 0:
		return fmt.Errorf("%w: --watch-writes must not be negative", errUsage)
	case c.maxWatches < 1 || c.maxPerClient < 1:
		return fmt.Errorf("%w: --max-watches and --max-watches-per-client must be at least 1", errUsage)
	case c.journal < 1:
		return fmt.Errorf("%w: --watch-journal must be at least 1", errUsage)
	}
	return nil
}

func defaultWatchConfig() watchConfig {
	return watchConfig{heartbeat: 15 * time.Second, writeTimeout: 5 * time.Second, writes: 100000, maxWatches: 10000, maxPerClient: 100, journal: registry.DefaultWatchBuffer}
}

// watchHub is what the agent's watch streams share: their limits, the
// count of open ones, and the epoch that makes an event id mean something
// only to the run of the node that issued it.
type watchHub struct {
	cfg   watchConfig
	epoch string
	gauge prometheus.Gauge // may be nil

	mu        sync.Mutex
	open      atomic.Int64 // changed under mu, read without it
	perClient map[string]int
	pace      pacer
	// owned are the streams that took their connection over: the server
	// no longer knows them, so the agent's drain waits for them here.
	owned map[*sseStream]struct{}
}

func newWatchHub(cfg watchConfig, gauge prometheus.Gauge) *watchHub {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &watchHub{cfg: cfg, epoch: hex.EncodeToString(b[:]), gauge: gauge, perClient: make(map[string]int), owned: make(map[*sseStream]struct{})}
}

func (h *watchHub) track(s *sseStream) {
	h.mu.Lock()
	h.owned[s] = struct{}{}
	h.mu.Unlock()
}

func (h *watchHub) untrack(s *sseStream) {
	h.mu.Lock()
	delete(h.owned, s)
	h.mu.Unlock()
}

// drain waits, once the node is closed, for the streams that own their
// connection to write their last event and end, as the server's Shutdown
// does for its own connections; those still open when ctx ends are cut
// off.
func (h *watchHub) drain(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		h.mu.Lock()
		left := len(h.owned)
		if left > 0 && ctx.Err() != nil {
			for s := range h.owned {
				s.cut()
			}
		}
		h.mu.Unlock()
		if left == 0 || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// admit counts a new stream from the request's client, or answers 429 when
// a limit is reached. The caller calls release when the stream ends.
func (h *watchHub) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	h.mu.Lock()
	var refusal string
	switch {
	case h.open.Load() >= int64(h.cfg.maxWatches):
		refusal = fmt.Sprintf("too many watches: this node serves at most %d at once (--max-watches)", h.cfg.maxWatches)
	case h.perClient[client] >= h.cfg.maxPerClient:
		refusal = fmt.Sprintf("too many watches from %s: at most %d at once per client (--max-watches-per-client)", client, h.cfg.maxPerClient)
	default:
		h.open.Add(1)
		h.perClient[client]++
	}
	h.mu.Unlock()
	if refusal != "" {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, errorBody{refusal})
		return nil, false
	}
	if h.gauge != nil {
		h.gauge.Inc()
	}
	return func() {
		h.mu.Lock()
		h.open.Add(-1)
		if h.perClient[client]--; h.perClient[client] == 0 {
			delete(h.perClient, client)
		}
		h.mu.Unlock()
		if h.gauge != nil {
			h.gauge.Dec()
		}
	}, true
}

// eventID names a change of this run of the node: "<epoch>-<sequence>".
func (h *watchHub) eventID(seq uint64) string {
	return h.epoch + "-" + strconv.FormatUint(seq, 10)
}

// parseEventID returns the sequence number of an id this run issued.
func (h *watchHub) parseEventID(id string) (uint64, error) {
	epoch, seq, ok := strings.Cut(id, "-")
	if !ok {
		return 0, fmt.Errorf("Last-Event-ID %q is not an id this node issues", id)
	}
	if epoch != h.epoch {
		return 0, fmt.Errorf("Last-Event-ID %q is from another node or an earlier run of this one", id)
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("Last-Event-ID %q is not an id this node issues", id)
	}
	return n, nil
}
