package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cpggo/cpg/client"
	"github.com/cpggo/cpg/client/clienttest"
	"github.com/stretchr/testify/require"
)

func members(t *testing.T, c *client.Client, group string) []string {
	t.Helper()
	page, err := c.Members(ctxT(t), "default", group, client.MembersOptions{})
	if err != nil {
		require.ErrorIs(t, err, client.ErrNotFound)
		return nil
	}
	var ids []string
	for _, m := range page.Members {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestGrantKeepsTheLeaseAliveUntilClosed(t *testing.T) {
	_, c := fake(t, clienttest.Options{})
	ctx := ctxT(t)
	// Long enough that a loaded machine's scheduling delays do not make a
	// keepalive every third of it late.
	const ttl = 600 * time.Millisecond
	lease, err := c.Grant(ctx, ttl)
	require.NoError(t, err)
	require.Equal(t, ttl, lease.TTL)
	_, err = c.Join(ctx, "default", "/svc/w", "w1", client.JoinOptions{Lease: lease.ID})
	require.NoError(t, err)

	time.Sleep(3 * ttl)
	require.Equal(t, []string{"w1"}, members(t, c, "/svc/w"), "kept alive past its TTL")
	require.NoError(t, lease.Err())
	require.WithinDuration(t, time.Now().Add(ttl), lease.Expires(), ttl)

	lease.Close()
	<-lease.Done()
	require.ErrorIs(t, lease.Err(), client.ErrLeaseClosed)
	require.Eventually(t, func() bool { return members(t, c, "/svc/w") == nil }, 5*ttl, 10*time.Millisecond,
		"a closed lease lapses and takes its members")
}

func TestRevokeTakesTheMembersAtOnce(t *testing.T) {
	srv, c := fake(t, clienttest.Options{})
	ctx := ctxT(t)
	lease, err := c.Grant(ctx, time.Minute)
	require.NoError(t, err)
	_, err = c.Join(ctx, "default", "/svc/w", "w1", client.JoinOptions{Lease: lease.ID})
	require.NoError(t, err)
	require.NoError(t, lease.Revoke(ctx))
	require.Nil(t, members(t, c, "/svc/w"))
	require.Equal(t, 0, srv.Leases())
	require.ErrorIs(t, lease.Err(), client.ErrLeaseClosed)
}

func TestALeaseTheAgentForgotIsLost(t *testing.T) {
	_, c := fake(t, clienttest.Options{})
	ctx := ctxT(t)
	lease, err := c.Grant(ctx, 150*time.Millisecond)
	require.NoError(t, err)
	defer lease.Close()
	// Another client revokes it: the next keepalive gets a 404.
	require.NoError(t, c.RevokeLease(ctx, lease.ID))
	select {
	case <-lease.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("a lease the agent forgot is not reported lost")
	}
	require.ErrorIs(t, lease.Err(), client.ErrLeaseLost)
	require.ErrorIs(t, lease.Err(), client.ErrNotFound)
}

func TestALeaseNoKeepaliveReachesInTimeIsLost(t *testing.T) {
	var failing atomic.Bool
	var keepalives atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/leases" {
			_ = json.NewEncoder(w).Encode(map[string]any{"id": "L1", "ttl": "500ms", "expires": time.Now().Add(500 * time.Millisecond)})
			return
		}
		keepalives.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"shutting down"}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"L1","ttl":"500ms"}`))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	require.NoError(t, err)
	lease, err := c.Grant(ctxT(t), 500*time.Millisecond)
	require.NoError(t, err)
	defer lease.Close()
	time.Sleep(700 * time.Millisecond)
	require.NoError(t, lease.Err(), "renewed while the agent answers")
	failing.Store(true)
	before := keepalives.Load()
	select {
	case <-lease.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("a lease whose keepalives all fail is not reported lost")
	}
	require.ErrorIs(t, lease.Err(), client.ErrLeaseLost)
	require.ErrorIs(t, lease.Err(), client.ErrUnavailable)
	require.Greater(t, keepalives.Load()-before, int32(1), "a failed keepalive is retried before the lease expires")
	require.False(t, time.Now().Before(lease.Expires()), "lost only once expired")
}

func TestGrantRefusesANonPositiveTTL(t *testing.T) {
	_, c := fake(t, clienttest.Options{})
	_, err := c.Grant(context.Background(), 0)
	require.Error(t, err)
}

func TestLeaseInfoReadsTheTTL(t *testing.T) {
	var l client.LeaseInfo
	require.NoError(t, json.Unmarshal([]byte(`{"id":"a","ttl":"1m30s","expires":"2026-01-02T03:04:05Z"}`), &l))
	require.Equal(t, 90*time.Second, l.TTL)
	require.NoError(t, json.Unmarshal([]byte(`{"id":"a","ttl":2.5}`), &l))
	require.Equal(t, 2500*time.Millisecond, l.TTL)
	require.Error(t, json.Unmarshal([]byte(`{"id":"a","ttl":"soon"}`), &l))
	require.Error(t, json.Unmarshal([]byte(`{"id":"a","ttl":true}`), &l))
}

func TestLeaseInfoWritesTheTTLAsTheAgentDoes(t *testing.T) {
	data, err := json.Marshal(client.LeaseInfo{ID: "a", TTL: 10 * time.Second})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"a","ttl":"10s","expires":"0001-01-01T00:00:00Z"}`, string(data))
}

func TestShowLeaseListsItsMembers(t *testing.T) {
	_, c := fake(t, clienttest.Options{})
	ctx := ctxT(t)
	info, err := c.CreateLease(ctx, time.Minute)
	require.NoError(t, err)
	_, err = c.Join(ctx, "default", "/svc/w", "w1", client.JoinOptions{Lease: info.ID})
	require.NoError(t, err)
	shown, err := c.ShowLease(ctx, info.ID)
	require.NoError(t, err)
	require.Equal(t, time.Minute, shown.TTL)
	require.Equal(t, []client.LeasedMember{{Scope: "default", Group: "/svc/w", Member: "w1", Count: 1}}, shown.Members)
	require.NoError(t, c.RevokeLease(ctx, info.ID))
	_, err = c.ShowLease(ctx, info.ID)
	require.ErrorIs(t, err, client.ErrNotFound)
}
