package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// EventKind names what a watch event says.
type EventKind string

// Kinds of a group watch's events.
const (
	// EventJoin: a member joined (or joined once more: see Member.Count).
	EventJoin EventKind = "join"
	// EventLeave: a member took back a join (Member.Count is what is left).
	EventLeave EventKind = "leave"
	// EventMeta: a member's metadata changed.
	EventMeta EventKind = "meta"
	// EventMember: a member present when a snapshot was taken.
	EventMember EventKind = "member"
)

// Kinds of a node watch's events.
const (
	// EventNode: a node known when the stream (re)started.
	EventNode    EventKind = "node"
	EventUp      EventKind = "up"
	EventSuspect EventKind = "suspect"
	EventDead    EventKind = "dead"
	EventRefuted EventKind = "refuted"
	EventLeft    EventKind = "left"
)

// Kinds both watches deliver.
const (
	// EventSynced ends a snapshot: the member (or node) events before it
	// are the whole state; changes follow with no gap.
	EventSynced EventKind = "synced"
	// EventReset: the watch could not resume where it was (the agent
	// restarted or forgot, the watcher fell behind, or it was cut off
	// before any event). Drop what you built: member (node) events follow
	// with the whole state, up to EventSynced.
	EventReset EventKind = "reset"
)

// Event is one event of a group watch.
type Event struct {
	Kind EventKind
	// ID is the agent's id of the event (opaque), empty for snapshot
	// members and resets.
	ID     string
	Scope  string
	Group  string
	Member Member
	// Applied is when the agent applied a change (by its clock): its
	// lookups have shown it since. Zero for snapshot members and resets.
	Applied time.Time
	// Reason says why, for EventReset.
	Reason string
}

// NodeEvent is one event of a node watch.
type NodeEvent struct {
	Kind EventKind
	ID   string
	Node Node
	// Reason says why, for EventReset.
	Reason string
}

// WatchOptions tune a watch.
type WatchOptions struct {
	// Snapshot starts the watch with one EventMember per current member
	// of every group the pattern selects, then EventSynced (node watches
	// always start so).
	Snapshot bool
	// IdleTimeout is how long the stream may stay silent, heartbeats
	// included, before the client takes it for dead and reconnects
	// (default 45 s: three of the agent's default heartbeats).
	IdleTimeout time.Duration
	// OnError, if set, hears every failure the watch recovers from (a
	// lost connection, a refused reconnection); it runs on the watch's
	// goroutine and must not block.
	OnError func(error)
}

const defaultIdleTimeout = 45 * time.Second

// Watch streams the changes to the groups of scope that pattern selects
// until ctx ends, when the channel closes. It returns once the stream is
// open (so every change made after it returns is seen), or the error of
// that first attempt.
//
// A lost connection is reopened with backoff and resumes after the last
// event seen; when it cannot, the channel carries an EventReset and the
// whole state again (see EventReset). Read the channel promptly: an agent
// cuts off a watcher that falls far behind (which then gets a reset).
func (c *Client) Watch(ctx context.Context, scope, pattern string, opts WatchOptions) (<-chan Event, error) {
	spec := streamSpec[Event]{
		path: scopePath(scope, "watch"),
		query: func(snapshot bool) url.Values {
			q := url.Values{"pattern": {pattern}}
			if snapshot {
				q.Set("snapshot", "1")
			}
			return q
		},
		decode: decodeEvent,
		reset:  func(reason string) Event { return Event{Kind: EventReset, Reason: reason} },
	}
	return openStream(ctx, c, spec, opts, newResumer(opts.Snapshot, false))
}

// WatchNodes streams the cluster's node status changes until ctx ends: an
// EventNode per node known, EventSynced, then up, suspect, dead, refuted
// and left as the failure detector sees them. Every reconnection starts
// over with an EventReset and the nodes (opts.Snapshot is implied).
func (c *Client) WatchNodes(ctx context.Context, opts WatchOptions) (<-chan NodeEvent, error) {
	spec := streamSpec[NodeEvent]{
		path:   "/v1/nodes/watch",
		query:  func(bool) url.Values { return nil },
		decode: decodeNodeEvent,
		reset:  func(reason string) NodeEvent { return NodeEvent{Kind: EventReset, Reason: reason} },
	}
	return openStream(ctx, c, spec, opts, newResumer(true, true))
}

func decodeEvent(f frame) (Event, error) {
	ev := Event{Kind: EventKind(f.event), ID: f.id}
	if ev.Kind == EventSynced {
		return ev, nil
	}
	var d struct {
		Scope   string    `json:"scope"`
		Group   string    `json:"group"`
		Member  *Member   `json:"member"`
		Applied time.Time `json:"applied"`
	}
	if err := json.Unmarshal([]byte(f.data), &d); err != nil {
		return Event{}, fmt.Errorf("%s event: %w", f.event, err)
	}
	if d.Group == "" || d.Member == nil || d.Member.ID == "" {
		return Event{}, fmt.Errorf("%s event without a group or member: %.100q", f.event, f.data)
	}
	ev.Scope, ev.Group, ev.Member, ev.Applied = d.Scope, d.Group, *d.Member, d.Applied
	return ev, nil
}

func decodeNodeEvent(f frame) (NodeEvent, error) {
	ev := NodeEvent{Kind: EventKind(f.event), ID: f.id}
	if ev.Kind == EventSynced {
		return ev, nil
	}
	if err := json.Unmarshal([]byte(f.data), &ev.Node); err != nil {
		return NodeEvent{}, fmt.Errorf("%s event: %w", f.event, err)
	}
	if ev.Node.Name == "" {
		return NodeEvent{}, fmt.Errorf("%s event without a node name: %.100q", f.event, f.data)
	}
	return ev, nil
}

// errorField is the "error" of a reset or overflow event's data.
func errorField(data string) string {
	var d struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(data), &d) != nil || d.Error == "" {
		return "(no reason given)"
	}
	return d.Error
}

// streamSpec is what differs between the group and the node watch.
type streamSpec[T any] struct {
	path   string
	query  func(snapshot bool) url.Values
	kinds  map[EventKind]bool
	decode func(frame) (T, error)
	reset  func(reason string) T
}

// watchKinds are the events each watch hands over; others (from a newer
// agent) are skipped.
var (
	groupKinds = map[EventKind]bool{EventJoin: true, EventLeave: true, EventMeta: true, EventMember: true, EventSynced: true}
	nodeKinds  = map[EventKind]bool{EventNode: true, EventUp: true, EventSuspect: true, EventDead: true,
		EventRefuted: true, EventLeft: true, EventSynced: true}
)

// stream is one watch: its connections, one after the other.
type stream[T any] struct {
	c       *Client
	spec    streamSpec[T]
	opts    WatchOptions
	resume  *resumer
	out     chan T
	jitter  func() float64
	onError func(error)
}

func openStream[T any](ctx context.Context, c *Client, spec streamSpec[T], opts WatchOptions, r *resumer) (<-chan T, error) {
	if spec.kinds == nil {
		spec.kinds = groupKinds
		if r.alwaysSnapshot {
			spec.kinds = nodeKinds
		}
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = defaultIdleTimeout
	}
	s := &stream[T]{c: c, spec: spec, opts: opts, resume: r, out: make(chan T, 64),
		jitter: rand.Float64, onError: opts.OnError}
	if s.onError == nil {
		s.onError = func(error) {}
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	go s.run(ctx, conn)
	return s.out, nil
}

// conn is one open connection of a watch.
type conn struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	idle   *time.Timer
	// silent is set when the idle timer cut the connection.
	silent atomic.Bool
}

func (cn *conn) close() {
	cn.idle.Stop()
	cn.cancel()
	cn.body.Close()
}

// connect opens the next connection as the resumer plans it.
func (s *stream[T]) connect(ctx context.Context) (*conn, error) {
	lastID, snapshot := s.resume.plan()
	cctx, cancel := context.WithCancel(ctx)
	req, err := s.c.newRequest(cctx, "GET", s.spec.path, s.spec.query(snapshot), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-store")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	// The agent answers once the stream is set up (its first heartbeat
	// follows at once), so the idle timer also bounds the wait for the
	// answer to a hung agent.
	cn := &conn{cancel: cancel}
	idle := time.AfterFunc(s.opts.IdleTimeout, func() {
		cn.silent.Store(true)
		cancel()
	})
	cn.idle = idle
	resp, err := s.c.streamHTTP.Do(req)
	if err != nil {
		idle.Stop()
		cancel()
		if cn.silent.Load() && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %v", s.opts.IdleTimeout)
		}
		return nil, fmt.Errorf("cpgd client: watch %s: %w", s.spec.path, unwrapURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		idle.Stop()
		cancel()
		return nil, responseError("GET", s.spec.path, resp, data)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		idle.Stop()
		cancel()
		return nil, fmt.Errorf("cpgd client: watch %s: answer of type %q, not an event stream", s.spec.path, resp.Header.Get("Content-Type"))
	}
	cn.body = &idleReader{r: resp.Body, timer: idle, after: s.opts.IdleTimeout, closer: resp.Body}
	return cn, nil
}

// idleReader restarts the idle timer at every read that returns data:
// any byte, heartbeat or event, shows the stream is alive.
type idleReader struct {
	r      io.Reader
	closer io.Closer
	timer  *time.Timer
	after  time.Duration
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.timer.Reset(ir.after)
	}
	return n, err
}

func (ir *idleReader) Close() error { return ir.closer.Close() }

func (s *stream[T]) run(ctx context.Context, cn *conn) {
	defer close(s.out)
	failures := 0
	for {
		if cn != nil {
			progressed, err := s.read(ctx, cn)
			cn.close()
			if ctx.Err() != nil {
				return
			}
			s.onError(err)
			s.resume.lost()
			if progressed {
				failures = 0
			}
		}
		cn = nil
		wait := time.NewTimer(backoff(failures, s.jitter()))
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
		var err error
		if cn, err = s.connect(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.onError(err)
			failures++
		}
	}
}

// read delivers one connection's events until it ends, and reports
// whether it delivered any and why it ended.
func (s *stream[T]) read(ctx context.Context, cn *conn) (progressed bool, err error) {
	if reset, reason := s.resume.open(); reset {
		if !s.send(ctx, cn, s.spec.reset(reason)) {
			return false, ctx.Err()
		}
	}
	sr := newSSEReader(cn.body)
	for {
		f, err := sr.next()
		if err != nil {
			switch {
			case cn.silent.Load() && ctx.Err() == nil:
				err = fmt.Errorf("nothing received, not even a heartbeat, for %v", s.opts.IdleTimeout)
			case errors.Is(err, io.EOF):
				err = errors.New("the agent ended the stream")
			}
			return progressed, fmt.Errorf("cpgd client: watch %s: %w", s.spec.path, unwrapURLError(err))
		}
		switch s.resume.frame(f) {
		case reconnect:
			return progressed, fmt.Errorf("cpgd client: watch %s: the agent sent %s: %s", s.spec.path, f.event, errorField(f.data))
		}
		if !s.spec.kinds[EventKind(f.event)] {
			continue
		}
		ev, err := s.spec.decode(f)
		if err != nil {
			s.resume.undecodable(err)
			return progressed, fmt.Errorf("cpgd client: watch %s: %w", s.spec.path, err)
		}
		if !s.send(ctx, cn, ev) {
			return progressed, ctx.Err()
		}
		progressed = true
	}
}

// send hands ev to the caller. The idle timer is paused meanwhile: a
// caller slow to read is not a silent agent.
func (s *stream[T]) send(ctx context.Context, cn *conn, ev T) bool {
	select {
	case s.out <- ev:
		return true
	default:
	}
	cn.idle.Stop()
	defer cn.idle.Reset(s.opts.IdleTimeout)
	select {
	case s.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}
