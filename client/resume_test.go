package client

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// step is one thing that happens to a watch, and what the policy must say.
type step struct {
	do string // "open", "frame", "lost", "undecodable"
	f  frame
	// after "open": whether a reset is delivered first; after any step:
	// the next connection's plan.
	reset    bool
	lastID   string
	snapshot bool
	verdict  verdict
}

func runSteps(t *testing.T, r *resumer, steps []step) {
	t.Helper()
	for i, s := range steps {
		switch s.do {
		case "open":
			reset, reason := r.open()
			require.Equal(t, s.reset, reset, "step %d: reset", i)
			if reset {
				require.NotEmpty(t, reason, "step %d: a reset says why", i)
			}
		case "frame":
			require.Equal(t, s.verdict, r.frame(s.f), "step %d: verdict", i)
		case "lost":
			r.lost()
		case "undecodable":
			r.undecodable(errFrameTooLarge)
		}
		lastID, snapshot := r.plan()
		require.Equal(t, s.lastID, lastID, "step %d: next Last-Event-ID", i)
		require.Equal(t, s.snapshot, snapshot, "step %d: next is a snapshot", i)
	}
}

func change(id string) frame { return frame{id: id, hasID: true, event: "join", data: "{}"} }

func TestResumeAfterTheLastEventSeen(t *testing.T) {
	runSteps(t, newResumer(false, false), []step{
		{do: "open"},
		{do: "frame", f: change("e1-1"), verdict: deliver, lastID: "e1-1"},
		{do: "frame", f: change("e1-2"), verdict: deliver, lastID: "e1-2"},
		{do: "lost", lastID: "e1-2"},
		{do: "open", lastID: "e1-2"},
		{do: "frame", f: frame{event: "closed", data: "{}"}, verdict: reconnect, lastID: "e1-2"},
	})
}

func TestResetRelistsWithASnapshotThatOpensWithReset(t *testing.T) {
	runSteps(t, newResumer(false, false), []step{
		{do: "open"},
		{do: "frame", f: change("e1-1"), verdict: deliver, lastID: "e1-1"},
		{do: "lost", lastID: "e1-1"},
		{do: "open", lastID: "e1-1"},
		{do: "frame", f: frame{event: "reset", data: `{"error":"unknown id"}`}, verdict: reconnect, snapshot: true},
		{do: "open", reset: true, snapshot: true},
		{do: "frame", f: frame{event: "member", data: "{}"}, verdict: deliver, snapshot: true},
		// Cut before synced: the caller holds part of a snapshot, so
		// the next one opens with a reset too.
		{do: "lost", snapshot: true},
		{do: "open", reset: true, snapshot: true},
		{do: "frame", f: frame{event: "member", data: "{}"}, verdict: deliver, snapshot: true},
		{do: "frame", f: frame{id: "e2-9", hasID: true, event: "synced", data: "{}"}, verdict: deliver, lastID: "e2-9"},
		{do: "lost", lastID: "e2-9"},
		{do: "open", lastID: "e2-9"},
	})
}

func TestOverflowAndUnreadableEventsRelist(t *testing.T) {
	runSteps(t, newResumer(false, false), []step{
		{do: "open"},
		{do: "frame", f: change("e1-1"), verdict: deliver, lastID: "e1-1"},
		{do: "frame", f: frame{event: "overflow", data: `{"error":"behind"}`}, verdict: reconnect, snapshot: true},
		{do: "open", reset: true, snapshot: true},
		{do: "frame", f: frame{id: "e1-5", hasID: true, event: "synced"}, verdict: deliver, lastID: "e1-5"},
		{do: "frame", f: change("e1-6"), verdict: deliver, lastID: "e1-6"},
		{do: "undecodable", snapshot: true},
		{do: "open", reset: true, snapshot: true},
	})
}

func TestAStreamLostBeforeAnyIDRelists(t *testing.T) {
	runSteps(t, newResumer(false, false), []step{
		{do: "open"},
		{do: "lost", snapshot: true},
		{do: "open", reset: true, snapshot: true},
	})
}

func TestTheFirstSnapshotOpensWithoutReset(t *testing.T) {
	runSteps(t, newResumer(true, false), []step{
		{do: "open", snapshot: true},
		{do: "frame", f: frame{event: "member", data: "{}"}, verdict: deliver, snapshot: true},
		{do: "frame", f: frame{id: "e1-3", hasID: true, event: "synced"}, verdict: deliver, lastID: "e1-3"},
	})
}

func TestNodeStreamsRelistAtEveryConnection(t *testing.T) {
	runSteps(t, newResumer(false, true), []step{
		{do: "open", snapshot: true},
		{do: "frame", f: frame{event: "node", data: "{}"}, verdict: deliver, snapshot: true},
		{do: "frame", f: frame{id: "n7", hasID: true, event: "synced"}, verdict: deliver, snapshot: true},
		{do: "lost", snapshot: true},
		{do: "open", reset: true, snapshot: true},
	})
}

func TestBackoffGrowsToItsCeilingWithJitterInItsUpperHalf(t *testing.T) {
	require.Equal(t, 50*time.Millisecond, backoff(0, 0))
	require.Equal(t, 100*time.Millisecond-1, backoff(0, 0.99999999999))
	require.Equal(t, 100*time.Millisecond, backoff(1, 0))
	require.Equal(t, 2500*time.Millisecond, backoff(6, 0))
	require.Equal(t, 2500*time.Millisecond, backoff(1000, 0))
	for n := range 40 {
		require.LessOrEqual(t, backoff(n, 0.999), backoffMax)
		require.LessOrEqual(t, backoff(n, 0), backoff(n+1, 0))
	}
}

func TestKeepAliveDelay(t *testing.T) {
	require.Equal(t, 10*time.Second, keepAliveDelay(30*time.Second, 0))
	require.Equal(t, 3*time.Second, keepAliveDelay(30*time.Second, 2))
	require.Equal(t, time.Millisecond, keepAliveDelay(time.Microsecond, 0))
}
