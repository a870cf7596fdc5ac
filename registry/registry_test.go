package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cpggo/cpg/crdt"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair is two nodes that replicate through an explicit queue, so a test
// decides when ops arrive.
type pair struct {
	a, b *Node
	toA  []crdt.Op
	toB  []crdt.Op
	// statesToA/B are refutes: whole owner states to merge.
	statesToA, statesToB []crdt.OwnerState
	clockN               int64
}

func newPair(t *testing.T, rtt func(string) (time.Duration, bool)) *pair {
	t.Helper()
	p := &pair{}
	clock := func() time.Time { p.clockN++; return time.Unix(0, p.clockN) }
	var err error
	p.a, err = New(Config{Name: "a", Incarnation: 1, Now: clock, RTT: rtt, onLocalOp: func(op *crdt.Op) { p.toB = append(p.toB, *op) },
		onLocalState: func(st *crdt.OwnerState) { p.statesToB = append(p.statesToB, *st) }})
	require.NoError(t, err)
	p.b, err = New(Config{Name: "b", Incarnation: 1, Now: clock, RTT: rtt, onLocalOp: func(op *crdt.Op) { p.toA = append(p.toA, *op) },
		onLocalState: func(st *crdt.OwnerState) { p.statesToA = append(p.statesToA, *st) }})
	require.NoError(t, err)
	t.Cleanup(func() { p.a.Close(); p.b.Close() })
	return p
}

func (p *pair) sync() {
	for len(p.toA) > 0 || len(p.toB) > 0 || len(p.statesToA) > 0 || len(p.statesToB) > 0 {
		toA, toB := p.toA, p.toB
		p.toA, p.toB = nil, nil
		statesToA, statesToB := p.statesToA, p.statesToB
		p.statesToA, p.statesToB = nil, nil
		p.a.merge(&crdt.Delta{Owners: statesToA})
		p.b.merge(&crdt.Delta{Owners: statesToB})
		for i := range toA {
			p.a.applyOp(&toA[i])
		}
		for i := range toB {
			p.b.applyOp(&toB[i])
		}
	}
}

func ids(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Node + ":" + m.ID
	}
	return out
}

func TestJoinCountsAndLeave(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()

	require.NoError(t, s.Join("/svc/db", "m1", nil))
	require.NoError(t, s.Join("/svc/db", "m1", nil))
	c, err := s.JoinCount("/svc/db", "m1")
	require.NoError(t, err)
	require.Equal(t, 2, c)

	require.NoError(t, s.Leave("/svc/db", "m1"))
	g, err := s.Members("/svc/db")
	require.NoError(t, err, "a member joined twice stays after one leave")
	require.Equal(t, uint32(1), g.Members[0].Count)

	require.NoError(t, s.Leave("/svc/db", "m1"))
	_, err = s.Members("/svc/db")
	require.ErrorIs(t, err, ErrNoSuchGroup)
	require.ErrorIs(t, s.Leave("/svc/db", "m1"), ErrNotMember)
	require.Empty(t, s.Groups())
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	require.NoError(t, s.Join("/ok", "m", nil))
	bigMeta := Meta{"k": strings.Repeat("v", MaxMetaBytes)}
	manyKeys := Meta{}
	for i := 0; i <= MaxMetaEntries; i++ {
		manyKeys[fmt.Sprint(i)] = "v"
	}
	cases := []struct {
		group, member string
		meta          Meta
		want          error
	}{
		{"", "m", nil, ErrInvalidName},
		{strings.Repeat("x", MaxNameLen+1), "m", nil, ErrInvalidName},
		{"/a/**", "m", nil, ErrInvalidName},
		{"/a/?", "m", nil, ErrInvalidName},
		{"/a/*?", "m", nil, ErrInvalidName},
		{strings.Repeat("/*", MaxWildcards+1), "m", nil, ErrInvalidName},
		{"/ok", "", nil, ErrInvalidMember},
		{"/ok", strings.Repeat("m", MaxMemberLen+1), nil, ErrInvalidMember},
		{"/ok", "m2", bigMeta, ErrInvalidMember},
		{"/ok", "m2", manyKeys, ErrInvalidMember},
	}
	for _, c := range cases {
		err := s.Join(c.group, c.member, c.meta)
		require.ErrorIs(t, err, c.want, "join %q %q", c.group, c.member)
	}
	require.Equal(t, []string{"/ok"}, s.Groups())
	g, err := s.Members("/ok")
	require.NoError(t, err)
	require.Equal(t, []string{"n1:m"}, ids(g.Members))

	_, err = s.Members("/o*")
	require.ErrorIs(t, err, ErrPatternInLookup, "a lookup takes a concrete name")
	_, err = n.Scope("")
	require.ErrorIs(t, err, ErrInvalidScope)
}

func TestMetaIsCopiedAndReplaced(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	meta := Meta{"zone": "eu"}
	require.NoError(t, s.Join("/g", "m", meta))
	meta["zone"] = "changed by the caller after the join"
	g, _ := s.Members("/g")
	require.Equal(t, "eu", g.Members[0].Meta["zone"])

	require.NoError(t, s.SetMeta("/g", "m", Meta{"zone": "us"}))
	g, _ = s.Members("/g")
	require.Equal(t, Meta{"zone": "us"}, g.Members[0].Meta)
	require.ErrorIs(t, s.SetMeta("/g", "other", nil), ErrNotMember)
}

func TestScopesAreSeparate(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	a, err := n.Scope("alpha")
	require.NoError(t, err)
	require.NoError(t, a.Join("/g", "m", nil))
	_, err = n.Default().Members("/g")
	require.ErrorIs(t, err, ErrNoSuchGroup)
	require.Equal(t, []string{"alpha", "default"}, n.Scopes())
}

func TestLocalAndRemoteLookups(t *testing.T) {
	p := newPair(t, nil)
	sa, sb := p.a.Default(), p.b.Default()
	require.NoError(t, sa.Join("/g", "a1", nil))
	require.NoError(t, sb.Join("/g", "b1", nil))
	require.NoError(t, sa.Join("/g", "a2", nil))
	p.sync()

	all, err := sa.Members("/g")
	require.NoError(t, err)
	require.Equal(t, []string{"a:a1", "a:a2", "b:b1"}, ids(all.Members), "local first, each part oldest first")
	local, _ := sa.LocalMembers("/g")
	require.Equal(t, []string{"a:a1", "a:a2"}, ids(local.Members))
	remote, _ := sa.RemoteMembers("/g")
	require.Equal(t, []string{"b:b1"}, ids(remote.Members))
	remoteOfB, _ := sb.RemoteMembers("/g")
	require.Equal(t, []string{"a:a1", "a:a2"}, ids(remoteOfB.Members))

	require.Equal(t, []string{"/g"}, sb.MemberGroups("a1"))
	left, err := sa.LeaveAll("a1")
	require.NoError(t, err)
	require.Equal(t, []string{"/g"}, left)
	p.sync()
	all, _ = sb.Members("/g")
	require.Equal(t, []string{"b:b1", "a:a2"}, ids(all.Members))
}

func TestPatternLookupReturnsTheMatchedGroup(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	require.NoError(t, s.Join("/svc/*", "any", nil))
	require.NoError(t, s.Join("/svc/?/db", "db", nil))
	require.NoError(t, s.Join("/svc/eu/db", "exact", nil))

	for name, want := range map[string]string{
		"/svc/eu/db":  "/svc/eu/db",
		"/svc/us/db":  "/svc/?/db",
		"/svc/us/web": "/svc/*",
	} {
		g, err := s.Members(name)
		require.NoError(t, err, name)
		require.Equal(t, want, g.Name, name)
	}
	_, err = s.Members("/other")
	require.ErrorIs(t, err, ErrNoSuchGroup)
}

func TestPicks(t *testing.T) {
	rtts := map[string]time.Duration{"b": 2 * time.Millisecond, "c": 9 * time.Millisecond}
	p := newPair(t, func(node string) (time.Duration, bool) { d, ok := rtts[node]; return d, ok })
	c, err := New(Config{Name: "c", Incarnation: 1, Now: func() time.Time { return time.Unix(0, 1000) }})
	require.NoError(t, err)
	defer c.Close()
	var fromC []crdt.Op
	c.cfg.onLocalOp = func(op *crdt.Op) { fromC = append(fromC, *op) }

	sa, sb := p.a.Default(), p.b.Default()
	require.NoError(t, sb.Join("/g", "b-old", nil)) // t=1
	require.NoError(t, sa.Join("/g", "a1", nil))    // t=2
	require.NoError(t, c.Default().Join("/g", "c-new", nil))
	p.sync()
	for i := range fromC {
		p.a.applyOp(&fromC[i])
	}

	pick := func(st Strategy, exclude ...string) string {
		_, m, err := sa.Pick("/g", st, exclude...)
		require.NoError(t, err, st)
		return m.ID
	}
	require.Equal(t, "a1", pick(Closest))
	require.Equal(t, "b-old", pick(Closest, "a1"), "no local member: the remote with the lowest RTT")
	require.Equal(t, "c-new", pick(Furthest))
	require.Equal(t, "b-old", pick(Furthest, "c-new"))
	require.Equal(t, "a1", pick(Local))
	require.Equal(t, "b-old", pick(Oldest))
	require.Equal(t, "a1", pick(Oldest, "b-old"))
	require.Equal(t, "c-new", pick(Newest))
	require.Equal(t, "a1", pick(Newest, "c-new", "b-old"))

	_, _, err = sa.Pick("/g", Local, "a1")
	require.ErrorIs(t, err, ErrNoMember)
	_, _, err = sa.Pick("/none", Random)
	require.ErrorIs(t, err, ErrNoSuchGroup)
	_, err = ParseStrategy("nearest")
	require.Error(t, err)
}

func TestRandomPickIsWeightedByJoinCount(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	require.NoError(t, s.Join("/g", "light", nil))
	for range 9 {
		require.NoError(t, s.Join("/g", "heavy", nil))
	}
	heavy := 0
	const draws = 10000
	for range draws {
		_, m, err := s.Pick("/g", Random)
		require.NoError(t, err)
		if m.ID == "heavy" {
			heavy++
		}
	}
	// Expect 90%; 5 standard deviations (0.3% each) either side.
	require.InDelta(t, 0.9, float64(heavy)/draws, 0.015)
	for range 100 {
		_, m, err := s.Pick("/g", Random, "heavy")
		require.NoError(t, err)
		require.Equal(t, "light", m.ID)
	}
}

func TestJoinContextLeavesWhenTheContextEnds(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	w, err := s.Watch("/g", 0)
	require.NoError(t, err)
	defer w.Close()

	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, s.JoinContext(ctx, "/g", "worker", nil))
	require.NoError(t, s.Join("/g", "worker", nil))
	cancel()
	require.Equal(t, EventJoin, (<-w.Events()).Kind)
	require.Equal(t, EventJoin, (<-w.Events()).Kind)
	ev := <-w.Events()
	require.Equal(t, EventLeave, ev.Kind, "the context's join is taken back")
	require.Equal(t, uint32(1), ev.Member.Count, "the other join stays")

	done, stop := context.WithCancel(context.Background())
	stop()
	require.ErrorIs(t, s.JoinContext(done, "/g", "late", nil), context.Canceled)
	require.Equal(t, []string(nil), s.MemberGroups("late"))
}

func TestWatchSeesEveryChangeInOrder(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	require.NoError(t, s.Join("/svc/a", "before", nil))
	w, err := s.Watch("/svc/*", 0)
	require.NoError(t, err)
	defer w.Close()
	exact, err := s.Watch("/svc/b", 0)
	require.NoError(t, err)
	defer exact.Close()

	require.NoError(t, s.Join("/svc/a", "m1", nil))
	require.NoError(t, s.Join("/svc/b", "m2", nil))
	require.NoError(t, s.Join("/other", "m3", nil))
	require.NoError(t, s.Leave("/svc/a", "m1"))

	var got []string
	for range 3 {
		ev := <-w.Events()
		got = append(got, fmt.Sprintf("%s %s %s", ev.Kind, ev.Group, ev.Member.ID))
	}
	require.Equal(t, []string{"join /svc/a m1", "join /svc/b m2", "leave /svc/a m1"}, got)
	require.Len(t, w.Events(), 0, "/other does not match /svc/*")
	ev := <-exact.Events()
	require.Equal(t, "m2", ev.Member.ID)
	require.Len(t, exact.Events(), 0)
}

func TestSlowWatcherOverflowsVisiblyAndNeverBlocksJoins(t *testing.T) {
	n, err := New(Config{Name: "n1", WatchBuffer: 8})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	w, err := s.Watch("/g", 4)
	require.NoError(t, err)
	for i := range 100 {
		require.NoError(t, s.Join("/g", fmt.Sprint(i), nil), "joins go on while nobody reads")
	}
	var got []Event
	for ev := range w.Events() {
		got = append(got, ev)
	}
	require.NotEmpty(t, got)
	require.Equal(t, EventOverflow, got[len(got)-1].Kind, "the last event says the watch overflowed")
	require.Less(t, len(got)-1, 100, "a reader 100 changes behind a journal of 8 cannot have them all")
	for i, ev := range got[:len(got)-1] {
		require.Equal(t, EventJoin, ev.Kind)
		require.Equal(t, fmt.Sprint(i), ev.Member.ID, "what arrives before the overflow is every change from the start, in order")
	}
	require.ErrorIs(t, w.Err(), ErrWatchOverflow)
	w.Close() // closing an ended watch is harmless
}

func TestCloseEndsWatchesAndRefusesChanges(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	s := n.Default()
	w, err := s.Watch("/g", 0)
	require.NoError(t, err)
	require.NoError(t, s.JoinContext(context.Background(), "/g", "m", nil))
	require.NoError(t, n.Close())
	_, open := <-w.Events()
	require.True(t, open, "the join event is still delivered")
	_, open = <-w.Events()
	require.False(t, open)
	require.ErrorIs(t, w.Err(), ErrClosed)
	require.True(t, errors.Is(s.Join("/g", "m2", nil), ErrClosed))
}

func TestRemoteOwnerPurgeAndSelfRefutation(t *testing.T) {
	p := newPair(t, nil)
	require.NoError(t, p.a.Default().Join("/g", "a1", nil))
	require.NoError(t, p.b.Default().Join("/g", "b1", nil))
	p.sync()

	p.b.tombstone("a", 1)
	g, _ := p.b.Default().Members("/g")
	require.Equal(t, []string{"b:b1"}, ids(g.Members), "a dead node's members are purged")

	// a learns of its tombstone, refutes with a new incarnation, and b takes
	// its members back.
	d := p.b.delta(&crdt.Digest{})
	p.a.merge(&d)
	p.sync()
	g, _ = p.b.Default().Members("/g")
	require.Equal(t, []string{"b:b1", "a:a1"}, ids(g.Members))
}

func TestConcurrentLookupsDuringJoins(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	require.NoError(t, s.Join("/g", "seed", nil))
	require.NoError(t, s.Join("/p/*", "pat", nil))
	stop := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				g, err := s.Members("/g")
				if err != nil || len(g.Members) == 0 || g.Members[0].ID != "seed" {
					errs <- fmt.Errorf("lookup during joins: %v %v", g, err)
					return
				}
				if _, err := s.Members("/p/x"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 2000 {
		require.NoError(t, s.Join("/g", fmt.Sprint("m", i), nil))
		require.NoError(t, s.Join(fmt.Sprint("/p/", i, "/*"), "x", nil))
	}
	close(stop)
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
}
