package client

import (
	"time"
)

// resumer is the policy of a watch that outlives its connections: where
// the next connection resumes, and when the caller's view must be rebuilt.
// It is a plain state machine (no clock, no I/O) so the policy is in one
// place and tested on its own.
//
// A connection resumes after the last event id seen (Last-Event-ID). When
// that is impossible (the agent answered reset or overflow, the stream
// ended before any id, or an event could not be read), the next
// connection asks for a snapshot instead, and it opens with a Reset event:
// the caller drops what it built and rebuilds from the member events up to
// synced. Every snapshot connection but the watch's first opens so, since
// the caller may hold part of an earlier snapshot.
type resumer struct {
	// alwaysSnapshot: the stream has no resume (node status: every
	// connection lists the nodes first).
	alwaysSnapshot bool
	needSnapshot   bool
	lastID         string
	reason         string // why the next snapshot re-lists
	opened         int
}

func newResumer(snapshot, alwaysSnapshot bool) *resumer {
	return &resumer{needSnapshot: snapshot || alwaysSnapshot, alwaysSnapshot: alwaysSnapshot}
}

// plan says how to open the next connection: with Last-Event-ID lastID
// (none when empty), or as a snapshot.
func (r *resumer) plan() (lastID string, snapshot bool) {
	if r.needSnapshot || r.alwaysSnapshot {
		return "", true
	}
	return r.lastID, false
}

// open records that a connection opened, and says whether the caller must
// first be told to drop its view (and why).
func (r *resumer) open() (reset bool, reason string) {
	r.opened++
	_, snapshot := r.plan()
	if !snapshot || r.opened == 1 {
		return false, ""
	}
	reason = r.reason
	if reason == "" {
		reason = "reconnected"
	}
	r.reason = ""
	return true, reason
}

// verdict is what a watch does with one frame.
type verdict uint8

const (
	deliver   verdict = iota + 1 // hand it to the caller
	skip                         // nothing for the caller (unknown event)
	reconnect                    // end this connection and open another
)

// frame takes one frame of the stream.
func (r *resumer) frame(f frame) verdict {
	switch f.event {
	case "reset", "overflow":
		r.relist(f.event + ": " + errorField(f.data))
		return reconnect
	case "closed":
		return reconnect
	case "synced":
		r.needSnapshot = false
	}
	if f.hasID {
		r.lastID = f.id
	}
	return deliver
}

// undecodable records that a frame could not be read: the event it held
// is lost to the caller, so the view is rebuilt.
func (r *resumer) undecodable(err error) {
	r.relist("an event could not be read: " + err.Error())
}

// lost records that a connection ended (any reason but the watch's end).
func (r *resumer) lost() {
	if r.lastID == "" && !r.needSnapshot {
		r.relist("the stream ended before any event id: nothing to resume from")
	}
}

func (r *resumer) relist(reason string) {
	if !r.needSnapshot || r.reason == "" {
		r.reason = reason
	}
	r.needSnapshot = true
}

// Reconnection backoff: the first retry soon (a restarting agent is back
// within a second), then doubling up to a ceiling so a long outage costs
// the agent little.
const (
	backoffFirst = 100 * time.Millisecond
	backoffMax   = 5 * time.Second
)

// backoff is the wait before reconnection attempt n (0 for the first after
// a working connection); jitter in [0,1) spreads it over its upper half so
// many watchers of one restarted agent do not reconnect at once.
func backoff(n int, jitter float64) time.Duration {
	d := backoffMax
	if n < 16 {
		d = min(backoffFirst<<n, backoffMax)
	}
	return d/2 + time.Duration(jitter*float64(d/2))
}
