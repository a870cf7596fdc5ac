package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cpggo/cpg/client"
	"github.com/cpggo/cpg/client/clienttest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fake(t *testing.T, opts clienttest.Options) (*clienttest.Server, *client.Client) {
	t.Helper()
	srv := clienttest.NewServer(opts)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, client.WithToken(opts.Token))
	require.NoError(t, err)
	return srv, c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewTakesABaseURLOrHostPort(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:7400":             "http://127.0.0.1:7400",
		"http://127.0.0.1:7400/":     "http://127.0.0.1:7400",
		"https://cpg.example/prefix": "https://cpg.example/prefix",
	} {
		c, err := client.New(addr)
		require.NoError(t, err, addr)
		require.Equal(t, want, c.Addr())
	}
	for _, bad := range []string{"ftp://h:1", "http://", "http://h:1/?q=1", "http://u:p@h:1", "http://h:1/#f", "http://[::1"} {
		_, err := client.New(bad)
		require.Error(t, err, bad)
	}
}

func TestRegistryCalls(t *testing.T) {
	_, c := fake(t, clienttest.Options{})
	ctx := ctxT(t)

	m, err := c.Join(ctx, "default", "/svc/db", "db-1", client.JoinOptions{Meta: map[string]string{"addr": "10.0.0.7:5432"}})
	require.NoError(t, err)
	require.Equal(t, client.Membership{Group: "/svc/db", Member: "db-1", Count: 1}, m)
	m, err = c.Join(ctx, "default", "/svc/db", "db-1", client.JoinOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, m.Count, "joins are counted")

	page, err := c.Members(ctx, "default", "/svc/db", client.MembersOptions{})
	require.NoError(t, err)
	require.Equal(t, "/svc/db", page.Group)
	require.Len(t, page.Members, 1)
	require.Equal(t, "db-1", page.Members[0].ID)
	require.Equal(t, "10.0.0.7:5432", page.Members[0].Meta["addr"])
	require.Equal(t, 2, page.Members[0].Count)
	require.WithinDuration(t, time.Now(), page.Members[0].Joined, time.Minute)

	_, err = c.SetMeta(ctx, "default", "/svc/db", "db-1", nil)
	require.NoError(t, err)
	group, picked, err := c.Pick(ctx, "default", "/svc/db", client.Oldest)
	require.NoError(t, err)
	require.Equal(t, "/svc/db", group)
	require.Equal(t, "db-1", picked.ID)
	require.Empty(t, picked.Meta, "SetMeta with nil clears the metadata")

	_, _, err = c.Pick(ctx, "default", "/svc/db", client.Random, "db-1")
	require.ErrorIs(t, err, client.ErrNotFound, "the only member is excluded")

	scopes, err := c.Scopes(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"default"}, scopes)
	groups, err := c.Groups(ctx, "default")
	require.NoError(t, err)
	require.Equal(t, []string{"/svc/db"}, groups)
	d, err := c.Digest(ctx, "default")
	require.NoError(t, err)
	require.Equal(t, 1, d.Groups)
	require.Equal(t, 1, d.Members)

	for range 2 {
		_, err = c.Leave(ctx, "default", "/svc/db", "db-1")
		require.NoError(t, err)
	}
	_, err = c.Leave(ctx, "default", "/svc/db", "db-1")
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusNotFound, e.Status)
	require.Equal(t, "db-1 is not a member of /svc/db", e.Message, "the agent's message, as it wrote it")
	require.ErrorIs(t, err, client.ErrNotFound)
	require.NotErrorIs(t, err, client.ErrBadRequest)
	require.NoError(t, c.Ready(ctx))
	require.NoError(t, c.Live(ctx))
}

func TestAllMembersFollowsTheCursorAcrossPages(t *testing.T) {
	_, c := fake(t, clienttest.Options{})
	ctx := ctxT(t)
	var want []string
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		_, err := c.Join(ctx, "default", "/g", id, client.JoinOptions{})
		require.NoError(t, err)
		want = append(want, id)
	}
	page, err := c.Members(ctx, "default", "/g", client.MembersOptions{Limit: 3})
	require.NoError(t, err)
	require.Len(t, page.Members, 3)
	require.NotEmpty(t, page.Next)

	var got []string
	for m, err := range c.AllMembers(ctx, "default", "/g", client.MembersOptions{Limit: 3}) {
		require.NoError(t, err)
		got = append(got, m.ID)
	}
	require.Equal(t, want, got)

	for _, err := range c.AllMembers(ctx, "default", "/nothing", client.MembersOptions{}) {
		require.ErrorIs(t, err, client.ErrNotFound)
	}
}

func TestAllMembersStopsOnACursorThatDoesNotMove(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"group":"/g","members":[{"id":"a"}],"next":"a"}`))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	require.NoError(t, err)
	n := 0
	var last error
	for _, err := range c.AllMembers(ctxT(t), "default", "/g", client.MembersOptions{}) {
		n++
		last = err
		require.Less(t, n, 10, "a server repeating its cursor must not loop forever")
	}
	require.ErrorContains(t, last, "same cursor")
}

func TestErrorsCarryTheStatusAndTheAgentsMessage(t *testing.T) {
	srv, c := fake(t, clienttest.Options{Token: "s3cret"})
	ctx := ctxT(t)

	_, err := c.Join(ctx, "default", "/g", "m", client.JoinOptions{})
	require.NoError(t, err, "the token is sent")

	anon, err := client.New(srv.URL)
	require.NoError(t, err)
	_, err = anon.Scopes(ctx)
	require.ErrorIs(t, err, client.ErrUnauthorized)
	require.ErrorContains(t, err, "missing or wrong bearer token")

	_, _, err = c.Pick(ctx, "default", "/g", client.Strategy("nearest"))
	require.ErrorIs(t, err, client.ErrBadRequest)

	// A non-JSON error body is kept, cut to a readable length.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream timed out "+string(make([]byte, 1000)), http.StatusBadGateway)
	}))
	defer plain.Close()
	pc, err := client.New(plain.URL)
	require.NoError(t, err)
	_, err = pc.Scopes(ctx)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusBadGateway, e.Status)
	require.Contains(t, e.Message, "upstream timed out")
	require.LessOrEqual(t, len(e.Message), 210)
}

func TestTransportErrorsSayWhichCall(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	c, err := client.New(addr)
	require.NoError(t, err)
	_, err = c.Groups(ctxT(t), "default")
	require.ErrorContains(t, err, "GET /v1/scopes/default/groups")
	require.ErrorContains(t, err, "connection refused")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Groups(ctx, "default")
	require.ErrorIs(t, err, context.Canceled)
}

func TestScopeNamesCannotReachAnotherRoute(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.EscapedPath()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"groups":[]}`))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	require.NoError(t, err)
	_, err = c.Groups(ctxT(t), "../leases/x?y")
	require.NoError(t, err)
	require.Equal(t, "/v1/scopes/..%2Fleases%2Fx%3Fy/groups", path)
}

func TestErrorIsMatchesOnlyItsStatusSentinel(t *testing.T) {
	e := &client.Error{Status: 409, Message: "m"}
	require.ErrorIs(t, e, client.ErrConflict)
	require.False(t, errors.Is(e, client.ErrNotFound))
	require.False(t, errors.Is(&client.Error{Status: 418}, client.ErrBadRequest))
	require.Equal(t, "POST /v1/x: 409 m", (&client.Error{Status: 409, Message: "m", Method: "POST", Path: "/v1/x"}).Error())
}

// countingTransport counts the requests it carries.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestWithHTTPClientCarriesCallsAndWatchesOutliveItsTimeout(t *testing.T) {
	srv := clienttest.NewServer(clienttest.Options{Heartbeat: 50 * time.Millisecond})
	defer srv.Close()
	tr := &countingTransport{}
	c, err := client.New(srv.URL, client.WithHTTPClient(&http.Client{Transport: tr, Timeout: 100 * time.Millisecond}))
	require.NoError(t, err)
	join(t, c, "/g", "m0")
	require.Equal(t, int32(1), tr.n.Load())

	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var errs atomic.Int32
	events, err := c.Watch(ctx, "default", "/g", client.WatchOptions{OnError: func(error) { errs.Add(1) }})
	require.NoError(t, err)
	time.Sleep(400 * time.Millisecond)
	join(t, c, "/g", "m1")
	require.Equal(t, "m1", next(t, events).Member.ID)
	require.Zero(t, errs.Load(), "the client's Timeout does not cut a watch")
	require.Equal(t, int32(3), tr.n.Load(), "the watch went through the given transport")
}
