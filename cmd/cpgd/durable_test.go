package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cpggo/cpg/registry"
)

// testAgent is the durable part of an agent on a data dir, with a clock
// the test moves.
type testAgent struct {
	t     *testing.T
	dir   string
	store *store
	node  *registry.Node
	d     *durable
	now   time.Time
	mu    sync.Mutex
}

func startDurable(t *testing.T, dir string, now time.Time) *testAgent {
	t.Helper()
	st, err := openStore(dir)
	require.NoError(t, err)
	inc, err := st.nextIncarnation(now)
	require.NoError(t, err)
	node, err := registry.New(registry.Config{Name: "n1", Incarnation: inc})
	require.NoError(t, err)
	ta := &testAgent{t: t, dir: dir, store: st, node: node, now: now}
	ta.d = newDurable(st, node, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ta.d.now = ta.clock
	require.NoError(t, ta.d.restore())
	t.Cleanup(ta.stop)
	return ta
}

func (ta *testAgent) clock() time.Time {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.now
}

func (ta *testAgent) advance(d time.Duration) {
	ta.mu.Lock()
	ta.now = ta.now.Add(d)
	ta.mu.Unlock()
}

// stop ends the agent as a crash would: nothing is written on the way out.
func (ta *testAgent) stop() {
	if ta.node == nil {
		return
	}
	_ = ta.node.Close()
	_ = ta.store.close()
	ta.node = nil
}

func (ta *testAgent) scope() *registry.Scope {
	s, err := ta.node.Scope("default")
	require.NoError(ta.t, err)
	return s
}

func (ta *testAgent) apply(kind changeKind, group, member, lease string, meta registry.Meta) (int, error) {
	return ta.d.apply(change{kind: kind, scope: ta.scope(), group: group, member: member, lease: lease, meta: meta})
}

// count is the member's join count in the registry (0 when absent).
func (ta *testAgent) count(group, member string) int {
	g, err := ta.scope().LocalMembers(group)
	if err != nil {
		return 0
	}
	for _, m := range g.Members {
		if m.ID == member && g.Name == group {
			return int(m.Count)
		}
	}
	return 0
}

// stored is the store's state, after checking that its index says what
// the file holds.
func (ta *testAgent) stored() storedState {
	st, err := ta.store.load()
	require.NoError(ta.t, err)
	require.Equal(ta.t, st.members, logOnDisk(ta.t, ta.store), "the index is the log on disk")
	return st
}

// What was acknowledged comes back after a restart on the same data dir:
// counts, metadata and the joins of a live lease, under a new incarnation.
func TestRegistrationsComeBackAfterRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	a := startDurable(t, dir, now)
	id, _, err := a.d.grant(time.Minute)
	require.NoError(t, err)
	for _, c := range []struct {
		kind                 changeKind
		group, member, lease string
		meta                 registry.Meta
	}{
		{changeJoin, "/svc/db", "db-1", "", registry.Meta{"zone": "eu"}},
		{changeJoin, "/svc/db", "db-1", "", nil},
		{changeJoin, "/svc/db", "db-1", id, nil},
		{changeJoin, "/svc/web", "web-1", "", nil},
		{changeLeave, "/svc/web", "web-1", "", nil},
		{changeJoin, "/svc/api", "api-1", "", nil},
		{changeMeta, "/svc/api", "api-1", "", registry.Meta{"v": "2"}},
	} {
		_, err := a.apply(c.kind, c.group, c.member, c.lease, c.meta)
		require.NoError(t, err)
	}
	a.stop()

	b := startDurable(t, dir, now.Add(time.Second))
	require.Equal(t, 3, b.count("/svc/db", "db-1"))
	require.Equal(t, 0, b.count("/svc/web", "web-1"))
	require.Equal(t, 1, b.count("/svc/api", "api-1"))
	g, err := b.scope().Members("/svc/db")
	require.NoError(t, err)
	require.Equal(t, registry.Meta{"zone": "eu"}, g.Members[0].Meta)
	g, err = b.scope().Members("/svc/api")
	require.NoError(t, err)
	require.Equal(t, registry.Meta{"v": "2"}, g.Members[0].Meta)
	require.True(t, b.d.leases.live(id, b.clock()), "the lease is back too")
	// The lease still holds its join: revoking it takes that one back.
	left, err := b.d.revoke(id)
	require.NoError(t, err)
	require.Equal(t, 1, left)
	require.Equal(t, 2, b.count("/svc/db", "db-1"))
}

// A lease that lapsed while the agent was down does not bring its joins
// back, and the restart erases them from the store.
func TestLapsedLeaseJoinsDoNotComeBack(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	a := startDurable(t, dir, now)
	id, _, err := a.d.grant(10 * time.Second)
	require.NoError(t, err)
	_, err = a.apply(changeJoin, "/svc/db", "leased", id, nil)
	require.NoError(t, err)
	_, err = a.apply(changeJoin, "/svc/db", "both", id, nil)
	require.NoError(t, err)
	_, err = a.apply(changeJoin, "/svc/db", "both", "", nil)
	require.NoError(t, err)
	a.stop()

	b := startDurable(t, dir, now.Add(11*time.Second))
	require.Equal(t, 0, b.count("/svc/db", "leased"))
	require.Equal(t, 1, b.count("/svc/db", "both"), "the join made without the lease stays")
	st := b.stored()
	require.Empty(t, st.leases)
	require.Len(t, st.members, 1)
	require.Equal(t, map[string]uint32{"": 1}, st.members[memberKey{"default", "/svc/db", "both"}].Joins)
	_, err = b.apply(changeJoin, "/svc/db", "x", id, nil)
	require.ErrorIs(t, err, errNoSuchLease)
}

// A lease not kept alive lapses and every join made under it is taken
// back; one kept alive does not.
func TestLeaseLapsesUnlessKeptAlive(t *testing.T) {
	a := startDurable(t, t.TempDir(), time.Now())
	kept, _, err := a.d.grant(10 * time.Second)
	require.NoError(t, err)
	dropped, _, err := a.d.grant(10 * time.Second)
	require.NoError(t, err)
	for range 2 {
		_, err = a.apply(changeJoin, "/svc/db", "a", dropped, nil)
		require.NoError(t, err)
	}
	_, err = a.apply(changeJoin, "/svc/web", "a", dropped, nil)
	require.NoError(t, err)
	_, err = a.apply(changeJoin, "/svc/db", "b", kept, nil)
	require.NoError(t, err)

	a.advance(6 * time.Second)
	_, err = a.d.keepAlive(kept)
	require.NoError(t, err)
	a.advance(5 * time.Second)
	a.d.expireLapsed(context.Background())
	require.Equal(t, 0, a.count("/svc/db", "a"))
	require.Equal(t, 0, a.count("/svc/web", "a"))
	require.Equal(t, 1, a.count("/svc/db", "b"))
	_, err = a.d.keepAlive(dropped)
	require.ErrorIs(t, err, errNoSuchLease)
	st := a.stored()
	require.Len(t, st.members, 1)
	require.Len(t, st.leases, 1)
}

// A change refused for any reason leaves the store and the registry as
// they were.
func TestRefusedChangesChangeNothing(t *testing.T) {
	a := startDurable(t, t.TempDir(), time.Now())
	_, err := a.apply(changeJoin, "/svc/db", "db-1", "", registry.Meta{"zone": "eu"})
	require.NoError(t, err)
	before := a.stored()
	commits := a.store.commits.Load()
	digest := a.node.Summary()

	_, err = a.apply(changeJoin, "/svc/db", "x", "0123456789abcdef", nil)
	require.ErrorIs(t, err, errNoSuchLease)
	_, err = a.apply(changeLeave, "/svc/db", "nobody", "", nil)
	require.ErrorIs(t, err, registry.ErrNotMember)
	_, err = a.apply(changeLeave, "/svc/db", "db-1", "0123456789abcdef", nil)
	require.ErrorIs(t, err, registry.ErrNotMember)
	_, err = a.apply(changeMeta, "/svc/db", "nobody", "", registry.Meta{"a": "b"})
	require.ErrorIs(t, err, registry.ErrNotMember)
	_, err = a.apply(changeJoin, "/svc/**", "x", "", nil)
	require.ErrorIs(t, err, registry.ErrInvalidName)
	_, err = a.apply(changeJoin, "/svc/db", "", "", nil)
	require.ErrorIs(t, err, registry.ErrInvalidMember)
	_, err = a.apply(changeLeave, "/svc/**", "db-1", "", nil)
	require.ErrorIs(t, err, registry.ErrInvalidName, "a leave naming an invalid group is a bad request, not a missing member")
	_, _, err = a.d.grant(500 * time.Millisecond)
	require.ErrorIs(t, err, errBadRequest)
	_, _, err = a.d.grant(25 * time.Hour)
	require.ErrorIs(t, err, errBadRequest)

	require.Equal(t, commits, a.store.commits.Load(), "no refused change reached the disk")
	require.Equal(t, before, a.stored())
	require.Equal(t, digest, a.node.Summary())

	// The registry refuses a change the store accepted (the node is
	// closing): the record is put back as it was.
	require.NoError(t, a.node.Close())
	_, err = a.apply(changeJoin, "/svc/db", "db-1", "", nil)
	require.ErrorIs(t, err, registry.ErrClosed)
	_, err = a.apply(changeLeave, "/svc/db", "db-1", "", nil)
	require.ErrorIs(t, err, registry.ErrClosed)
	require.Equal(t, before, a.stored())
}

// A leave takes back the join a client names by its lease, else a join
// made without a lease first.
func TestLeaveTakesBackTheRightJoin(t *testing.T) {
	a := startDurable(t, t.TempDir(), time.Now())
	id, _, err := a.d.grant(time.Minute)
	require.NoError(t, err)
	_, err = a.apply(changeJoin, "/g", "m", id, nil)
	require.NoError(t, err)
	_, err = a.apply(changeJoin, "/g", "m", "", nil)
	require.NoError(t, err)
	n, err := a.apply(changeLeave, "/g", "m", "", nil)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, map[string]uint32{id: 1}, a.stored().members[memberKey{"default", "/g", "m"}].Joins)
	n, err = a.apply(changeLeave, "/g", "m", "", nil)
	require.NoError(t, err)
	require.Equal(t, 0, n)
	require.Empty(t, a.stored().members)
	left, err := a.d.revoke(id)
	require.NoError(t, err)
	require.Zero(t, left, "the lease's join was already taken back")
}

// Joins racing a revocation of their lease either bind before it (and
// are taken back by it) or are refused: none survives the lease.
func TestJoinsRacingARevocationDoNotOutliveTheLease(t *testing.T) {
	a := startDurable(t, t.TempDir(), time.Now())
	for round := range 5 {
		id, _, err := a.d.grant(time.Minute)
		require.NoError(t, err)
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := range 5 {
					_, err := a.apply(changeJoin, "/g", string(rune('a'+w))+string(rune('a'+i)), id, nil)
					if err != nil {
						require.ErrorIs(t, err, errNoSuchLease)
					}
				}
			})
		}
		_, err = a.d.revoke(id)
		require.NoError(t, err)
		wg.Wait()
		g, err := a.scope().LocalMembers("/g")
		if err == nil {
			require.Empty(t, g.Members, "round %d", round)
		}
		require.Empty(t, a.stored().members, "round %d", round)
	}
}

// An agent keeps at most maxLeases leases: a grant beyond is refused and
// stores nothing.
func TestLeaseGrantsAreBounded(t *testing.T) {
	a := startDurable(t, t.TempDir(), time.Now())
	for i := range maxLeases {
		a.d.leases.put(fmt.Sprintf("%016x", i), leaseRecord{TTL: time.Minute, Expires: a.clock().Add(time.Minute).UnixNano()})
	}
	_, _, err := a.d.grant(time.Minute)
	require.ErrorIs(t, err, errTooManyLeases)
	require.Empty(t, a.stored().leases)
}
