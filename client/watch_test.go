package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cpggo/cpg/client"
	"github.com/cpggo/cpg/client/clienttest"
	"github.com/stretchr/testify/require"
)

// next reads one event or fails the test.
func next[T any](t *testing.T, events <-chan T) T {
	t.Helper()
	select {
	case ev, ok := <-events:
		require.True(t, ok, "the watch ended")
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	panic("unreachable")
}

func join(t *testing.T, c *client.Client, group, member string) {
	t.Helper()
	_, err := c.Join(ctxT(t), "default", group, member, client.JoinOptions{})
	require.NoError(t, err)
}

func TestWatchDeliversChangesOfTheGroupsItSelects(t *testing.T) {
	_, c := fake(t, clienttest.Options{})
	join(t, c, "/other", "x")
	ctx, cancel := context.WithCancel(ctxT(t))
	events, err := c.Watch(ctx, "default", "/svc/*", client.WatchOptions{})
	require.NoError(t, err)

	join(t, c, "/other", "y")
	join(t, c, "/svc/web", "w1")
	ev := next(t, events)
	require.Equal(t, client.EventJoin, ev.Kind)
	require.Equal(t, "default", ev.Scope)
	require.Equal(t, "/svc/web", ev.Group)
	require.Equal(t, "w1", ev.Member.ID)
	require.NotEmpty(t, ev.ID)
	_, err = c.SetMeta(ctxT(t), "default", "/svc/web", "w1", map[string]string{"k": "v"})
	require.NoError(t, err)
	ev = next(t, events)
	require.Equal(t, client.EventMeta, ev.Kind)
	require.Equal(t, "v", ev.Member.Meta["k"])
	_, err = c.Leave(ctxT(t), "default", "/svc/web", "w1")
	require.NoError(t, err)
	require.Equal(t, client.EventLeave, next(t, events).Kind)

	cancel()
	for range events {
	}
}

func TestWatchSnapshotThenChanges(t *testing.T) {
	_, c := fake(t, clienttest.Options{})
	join(t, c, "/svc/a", "a1")
	join(t, c, "/svc/b", "b1")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	events, err := c.Watch(ctx, "default", "/svc/*", client.WatchOptions{Snapshot: true})
	require.NoError(t, err)
	got := map[string]bool{}
	for range 2 {
		ev := next(t, events)
		require.Equal(t, client.EventMember, ev.Kind)
		got[ev.Group+" "+ev.Member.ID] = true
	}
	require.Equal(t, map[string]bool{"/svc/a a1": true, "/svc/b b1": true}, got)
	require.Equal(t, client.EventSynced, next(t, events).Kind)
	join(t, c, "/svc/a", "a2")
	require.Equal(t, "a2", next(t, events).Member.ID)
}

func TestWatchResumesAfterACutWithNoGapAndNoDuplicate(t *testing.T) {
	srv, c := fake(t, clienttest.Options{})
	join(t, c, "/g", "seed")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var errs atomic.Int32
	events, err := c.Watch(ctx, "default", "/g", client.WatchOptions{OnError: func(error) { errs.Add(1) }})
	require.NoError(t, err)
	join(t, c, "/g", "m0")
	require.Equal(t, "m0", next(t, events).Member.ID)

	// Joins made while the stream is down are delivered after it
	// resumes, once each and in order.
	srv.CutStreams()
	for i := 1; i <= 5; i++ {
		join(t, c, "/g", fmt.Sprintf("m%d", i))
	}
	for i := 1; i <= 5; i++ {
		ev := next(t, events)
		require.Equal(t, client.EventJoin, ev.Kind, "a resumed stream carries no reset")
		require.Equal(t, fmt.Sprintf("m%d", i), ev.Member.ID)
	}
	join(t, c, "/g", "m6")
	require.Equal(t, "m6", next(t, events).Member.ID)
	require.Positive(t, errs.Load(), "the cut is reported")
}

func TestWatchRelistsAfterTheAgentRestarts(t *testing.T) {
	srv, c := fake(t, clienttest.Options{})
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	join(t, c, "/g", "m0")
	events, err := c.Watch(ctx, "default", "/g", client.WatchOptions{})
	require.NoError(t, err)
	join(t, c, "/g", "m1")
	require.Equal(t, "m1", next(t, events).Member.ID)

	srv.Restart()
	join(t, c, "/g", "m2")
	ev := next(t, events)
	require.Equal(t, client.EventReset, ev.Kind)
	require.Contains(t, ev.Reason, "cannot resume")
	got := map[string]bool{}
	for {
		ev := next(t, events)
		if ev.Kind == client.EventSynced {
			break
		}
		require.Equal(t, client.EventMember, ev.Kind)
		got[ev.Member.ID] = true
	}
	require.Equal(t, map[string]bool{"m0": true, "m1": true, "m2": true}, got, "the whole state after a reset")
	join(t, c, "/g", "m3")
	require.Equal(t, "m3", next(t, events).Member.ID)
}

func TestWatchRelistsAWatcherThatFellBehind(t *testing.T) {
	srv, c := fake(t, clienttest.Options{History: 4})
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	_, err := c.Watch(ctx, "default", "/g", client.WatchOptions{Snapshot: true})
	require.ErrorIs(t, err, client.ErrNotFound, "no such scope yet")
	join(t, c, "/g", "m0")
	events, err := c.Watch(ctx, "default", "/g", client.WatchOptions{Snapshot: true})
	require.NoError(t, err)
	require.Equal(t, client.EventMember, next(t, events).Kind)
	require.Equal(t, client.EventSynced, next(t, events).Kind)

	srv.Overflow()
	join(t, c, "/g", "m1")
	ev := next(t, events)
	if ev.Kind == client.EventJoin {
		// The stream may carry the join before it is cut.
		ev = next(t, events)
	}
	require.Equal(t, client.EventReset, ev.Kind)
	require.Contains(t, ev.Reason, "overflow: the watcher fell behind")
	got := map[string]bool{}
	for ev := next(t, events); ev.Kind != client.EventSynced; ev = next(t, events) {
		require.Equal(t, client.EventMember, ev.Kind)
		got[ev.Member.ID] = true
	}
	require.Equal(t, map[string]bool{"m0": true, "m1": true}, got)
}

func TestWatchReconnectsAStreamThatFellSilent(t *testing.T) {
	var connections atomic.Int32
	hang := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := connections.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		if n == 1 {
			fmt.Fprint(w, ": heartbeat\n\nid: e1-1\nevent: join\ndata: {\"scope\":\"default\",\"group\":\"/g\",\"member\":{\"id\":\"a\"}}\n\n")
			w.(http.Flusher).Flush()
			// Then silence: a hung agent, or a proxy holding a dead
			// connection.
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		if r.Header.Get("Last-Event-ID") != "e1-1" {
			http.Error(w, "no resume", 500)
			return
		}
		fmt.Fprint(w, "id: e1-2\nevent: join\ndata: {\"scope\":\"default\",\"group\":\"/g\",\"member\":{\"id\":\"b\"}}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	defer once.Do(func() { close(hang) })
	c, err := client.New(srv.URL)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var reported atomic.Value
	events, err := c.Watch(ctx, "default", "/g", client.WatchOptions{IdleTimeout: 200 * time.Millisecond,
		OnError: func(err error) { reported.CompareAndSwap(nil, err.Error()) }})
	require.NoError(t, err)
	require.Equal(t, "a", next(t, events).Member.ID)
	start := time.Now()
	require.Equal(t, "b", next(t, events).Member.ID, "resumed after the silent stream was dropped")
	require.Less(t, time.Since(start), 2*time.Second)
	require.Contains(t, reported.Load(), "nothing received, not even a heartbeat, for 200ms")
	cancel()
	for range events {
	}
}

func TestWatchKeepsAStreamThatHeartbeats(t *testing.T) {
	var connections atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connections.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			fmt.Fprint(w, ": heartbeat\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctxT(t))
	var errs atomic.Int32
	events, err := c.Watch(ctx, "default", "/g", client.WatchOptions{
		IdleTimeout: 200 * time.Millisecond, OnError: func(error) { errs.Add(1) }})
	require.NoError(t, err)
	time.Sleep(time.Second)
	cancel()
	for range events {
	}
	require.Equal(t, int32(1), connections.Load(), "a stream that heartbeats is not idle")
	require.Zero(t, errs.Load())
}

func TestWatchDoesNotTakeASlowReaderForASilentAgent(t *testing.T) {
	var connections atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connections.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for i := range 200 {
			fmt.Fprintf(w, "id: e1-%d\nevent: join\ndata: {\"group\":\"/g\",\"member\":{\"id\":\"m%d\"}}\n\n", i, i)
		}
		w.(http.Flusher).Flush()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				fmt.Fprint(w, ": heartbeat\n\n")
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	events, err := c.Watch(ctx, "default", "/g", client.WatchOptions{IdleTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	// The reader is busy for longer than the idle timeout while the
	// watch holds more events than its channel.
	time.Sleep(600 * time.Millisecond)
	for i := range 200 {
		require.Equal(t, fmt.Sprintf("m%d", i), next(t, events).Member.ID)
	}
	// A reconnection, had the stream been dropped, happens within this.
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, int32(1), connections.Load())
}

func TestWatchSkipsEventsItDoesNotKnowAndRelistsOnUnreadableOnes(t *testing.T) {
	var connections atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := connections.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		switch n {
		case 1:
			fmt.Fprint(w, "id: e1-1\nevent: rebalance\ndata: {}\n\n")
			fmt.Fprint(w, "id: e1-2\nevent: join\ndata: {\"group\":\"/g\",\"member\":{\"id\":\"a\"}}\n\n")
			fmt.Fprint(w, "id: e1-3\nevent: join\ndata: {\"group\":\"/g\",\"member\":\n\n")
		default:
			require.Equal(t, "1", r.URL.Query().Get("snapshot"))
			require.Empty(t, r.Header.Get("Last-Event-ID"))
			fmt.Fprint(w, "event: member\ndata: {\"group\":\"/g\",\"member\":{\"id\":\"a\"}}\n\n")
			fmt.Fprint(w, "id: e1-3\nevent: synced\ndata: {}\n\n")
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	events, err := c.Watch(ctx, "default", "/g", client.WatchOptions{})
	require.NoError(t, err)
	require.Equal(t, client.EventJoin, next(t, events).Kind, "the unknown event is skipped")
	ev := next(t, events)
	require.Equal(t, client.EventReset, ev.Kind)
	require.Contains(t, ev.Reason, "could not be read")
	require.Equal(t, client.EventMember, next(t, events).Kind)
	require.Equal(t, client.EventSynced, next(t, events).Kind)
}

func TestWatchReportsAFirstRefusalAndEndsWithItsContext(t *testing.T) {
	_, c := fake(t, clienttest.Options{})
	_, err := c.Watch(ctxT(t), "nope", "/g", client.WatchOptions{})
	require.ErrorIs(t, err, client.ErrNotFound)

	join(t, c, "/g", "m")
	ctx, cancel := context.WithCancel(context.Background())
	events, err := c.Watch(ctx, "default", "/g", client.WatchOptions{})
	require.NoError(t, err)
	cancel()
	select {
	case _, ok := <-events:
		require.False(t, ok)
	case <-time.After(2 * time.Second):
		t.Fatal("the channel did not close when the context ended")
	}
}

func TestWatchNodesListsThenFollows(t *testing.T) {
	srv, c := fake(t, clienttest.Options{})
	srv.SetNodes(clienttest.Node{Name: "a", Status: "alive"}, clienttest.Node{Name: "b", Status: "alive"})
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	events, err := c.WatchNodes(ctx, client.WatchOptions{})
	require.NoError(t, err)
	require.Equal(t, "a", next(t, events).Node.Name)
	require.Equal(t, "b", next(t, events).Node.Name)
	require.Equal(t, client.EventSynced, next(t, events).Kind)
	srv.NodeChange("suspect", clienttest.Node{Name: "b", Status: "suspect", RTTms: 1.5})
	ev := next(t, events)
	require.Equal(t, client.EventSuspect, ev.Kind)
	require.Equal(t, "suspect", ev.Node.Status)
	require.Equal(t, 1.5, ev.Node.RTTms)

	srv.CutStreams()
	require.Equal(t, client.EventReset, next(t, events).Kind, "a node stream starts over at every connection")
	require.Equal(t, client.EventNode, next(t, events).Kind)
	nodes, err := c.Nodes(ctxT(t))
	require.NoError(t, err)
	require.Len(t, nodes, 2)
}
