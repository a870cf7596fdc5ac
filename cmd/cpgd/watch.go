package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cpggo/cpg/registry"
	"github.com/prometheus/client_golang/prometheus"
)

func (a *api) watchRoutes(mux *http.ServeMux) {
	cfg := defaultWatchConfig()
	if a.cfg != nil {
		cfg = a.cfg.watch
	}
	a.watches = newWatchHub(cfg, a.watchGauge())
	mux.HandleFunc("GET /v1/scopes/{scope}/watch", a.watch)
	mux.HandleFunc("GET /v1/nodes/watch", a.watchNodes)
}

// watchQuery is what a watch takes in its query string.
var watchQuery = queryParams{"pattern": false, "snapshot": false}

// watch streams the changes of the groups a pattern selects as
// server-sent events (docs/API.md): each change with an id that
// Last-Event-ID resumes from, an optional snapshot first, heartbeats, and
// a clear last event when the stream cannot go on (reset, overflow,
// closed).
func (a *api) watch(w http.ResponseWriter, r *http.Request) {
	q, ok := readQuery(w, r, watchQuery)
	if !ok {
		return
	}
	pattern := q.Get("pattern")
	if pattern == "" {
		writeJSON(w, http.StatusBadRequest, errorBody{"query parameter \"pattern\" is required: a group name or a pattern such as /svc/*"})
		return
	}
	var snapshot bool
	switch v := q.Get("snapshot"); v {
	case "", "0", "false":
	case "1", "true":
		snapshot = true
	default:
		writeJSON(w, http.StatusBadRequest, errorBody{"query parameter \"snapshot\": want 1 or 0, not " + quote(v)})
		return
	}
	s, ok := a.scope(w, r)
	if !ok {
		return
	}
	opts := registry.SubscribeOptions{Snapshot: snapshot}
	var reset string
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		// The client has the state up to id: a snapshot would repeat it.
		opts.Snapshot = false
		if seq, err := a.watches.parseEventID(id); err != nil {
			reset = err.Error()
		} else {
			opts.Resume, opts.After = true, seq
		}
	}
	release, ok := a.watches.admit(w, r)
	if !ok {
		return
	}
	defer release()
	sub, err := s.Subscribe(pattern, opts)
	if errors.Is(err, registry.ErrResume) {
		reset = err.Error()
		sub, err = s.Subscribe(pattern, registry.SubscribeOptions{}) // only to check the pattern
	}
	if err != nil {
		writeError(w, err)
		return
	}
	defer sub.Close()

	stream := openStream(w, r, a.watches.cfg.writeTimeout, a.watches)
	defer stream.end()
	if reset != "" {
		stream.deadline()
		stream.event("", "reset", errorEvent(reset+"; read the members again, or watch with snapshot=1"))
		stream.flush()
		return
	}
	if opts.Snapshot {
		stream.deadline()
		// One buffer for all the members: the stream keeps what it is
		// given until the flush.
		var b, data []byte
		for _, g := range sub.Snapshot() {
			for i := range g.Members {
				data = appendEventData(data[:0], s.Name(), g.Name, &g.Members[i])
				b = appendEvent(b, "", "member", data)
			}
		}
		stream.raw(b)
		stream.event(a.watches.eventID(sub.Start()), "synced", []byte("{}"))
		if stream.flush() != nil {
			return
		}
	}
	a.follow(r.Context(), stream, sub)
}

// follow writes the subscription's changes as they come, a batch per
// wake-up, and a heartbeat every interval, until the client goes, the
// subscription ends or a write fails.
//
// After each write the stream sleeps the write interval
// (streamWriteInterval, up to a quarter more: the streams' pacer wakes
// those that wait about as long together) before it looks again: changes
// that come meanwhile go out together at its end, so a busy group costs
// each stream one wake-up and one write per interval, not one per change,
// and a quiet stream's next change (after the interval) goes out at once.
// A sleeping stream waits on no channel of the journal, so the joins that
// feed a thousand busy streams have no one to wake.
func (a *api) follow(ctx context.Context, stream *sseStream, sub *registry.Subscription) {
	heartbeat := time.NewTicker(a.watches.cfg.heartbeat)
	defer heartbeat.Stop()
	frame := a.watches.frame
	var batch []*registry.Record
	for {
		select {
		case <-ctx.Done():
			return
		case <-stream.closed():
			return
		case <-heartbeat.C:
			if stream.heartbeat() != nil {
				return
			}
			continue
		case <-sub.Ready():
		}
		var err error
		batch, err = sub.Next(batch[:0])
		stream.deadline()
		for _, rec := range batch {
			stream.raw(rec.Encoded(frame))
		}
		clear(batch)
		if cap(batch) > maxKeptBatch {
			batch = nil // a burst's buffer is not kept for the stream's life
		}
		switch {
		case err == nil:
		case errors.Is(err, registry.ErrWatchOverflow):
			stream.event("", "overflow", errorEvent(err.Error()+"; read the members again, or watch with snapshot=1"))
		case errors.Is(err, registry.ErrClosed):
			stream.event("", "closed", []byte("{}"))
		}
		if stream.flush() != nil || err != nil {
			return
		}
		wait := streamWriteInterval(a.watches.open.Load(), a.watches.cfg.writes)
		if wait <= 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-stream.closed():
			return
		case <-a.watches.pace.after(wait):
		}
	}
}

// frame encodes a change as its event, id included; every stream of the
// node shares each change's encoding.
func (h *watchHub) frame(rec *registry.Record) []byte {
	data := appendEventData(make([]byte, 0, 256), rec.Scope, rec.Group, &rec.Member)
	data = appendApplied(data, rec.Applied)
	return appendEvent(make([]byte, 0, len(data)+64), h.eventID(rec.Seq), rec.Kind.String(), data)
}

// appendEventData appends {"scope","group","member"}.
func appendEventData(b []byte, scope, group string, m *registry.Member) []byte {
	b = append(b, `{"scope":`...)
	b = appendJSONString(b, scope)
	b = append(b, `,"group":`...)
	b = appendJSONString(b, group)
	b = append(b, `,"member":`...)
	b = appendMemberJSON(b, m)
	return append(b, '}')
}

// appendApplied adds "applied", when this node applied the change (RFC
// 3339 with nanoseconds, UTC), to an event's data object.
func appendApplied(data []byte, at time.Time) []byte {
	data = append(data[:len(data)-1], `,"applied":"`...)
	data = at.UTC().AppendFormat(data, time.RFC3339Nano)
	return append(data, `"}`...)
}

func quote(s string) string { return string(appendJSONString(nil, s)) }

// watchGauge is the metric of open streams, if the agent has metrics.
func (a *api) watchGauge() prometheus.Gauge {
	if a.metrics == nil {
		return nil
	}
	return a.metrics.watches
}
