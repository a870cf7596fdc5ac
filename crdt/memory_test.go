package crdt

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// eachWireOp calls fn with the ops of owners owners, each joining
// perOwner members spread over 7 groups, decoded from their encoding as a
// replica receives them (every string a fresh copy), interleaved across
// owners with join times out of order, as ops of many owners reach a
// replica.
func eachWireOp(tb testing.TB, owners, perOwner int, fn func(*Op)) {
	for k := range perOwner {
		for o := range owners {
			op := Op{Owner: fmt.Sprintf("node-%05d", o), Incarnation: 1, Seq: uint64(k + 1), Kind: Join,
				Scope: "sim", Group: fmt.Sprintf("g%d", k%7), Member: fmt.Sprintf("node-%05d/m%d", o, k), Count: 1,
				Time: int64(k*1000 + (o*7919)%1000)}
			got, err := DecodeOp(AppendOp(nil, &op))
			require.NoError(tb, err)
			fn(&got)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A replica's memory per entry, in groups of about 290 members (100 owners
// with 20 members each in 7 groups) that nobody reads, as in the
// simulator, with the replica sharing an interner with another that holds
// the same names. It was 180 bytes: groups copied per change, a (node, id)
// index of two strings per entry, a member ID per replica, and a map per
// owner and per digest bucket.
func TestReplicaBytesPerEntry(t *testing.T) {
	const owners, perOwner = 100, 20
	names := NewInterner()
	first := New(Config{Self: "first", Incarnation: 1, Intern: names.Intern})
	eachWireOp(t, owners, perOwner, func(op *Op) { require.Equal(t, Applied, first.Apply(op)) })
	second := New(Config{Self: "second", Incarnation: 1, Intern: names.Intern})
	eachWireOp(t, owners, perOwner, func(op *Op) { require.Equal(t, Applied, second.Apply(op)) })
	g := second.Group("sim", "g0")
	m := g.Members()[0]
	e, _ := first.Group("sim", "g0").Lookup(m.Node, m.ID)
	require.Equal(t, unsafe.StringData(m.ID), unsafe.StringData(e.Member), "replicas sharing an interner share member IDs")

	// The replica's size is what the heap loses when it goes.
	with := heapInUse()
	runtime.KeepAlive(second)
	g, second = nil, nil
	perEntry := float64(with-heapInUse()) / (owners * perOwner)
	t.Logf("%.0f bytes per entry (owners' records included)", perEntry)
	require.Less(t, perEntry, 125.0)
	runtime.KeepAlive(first)
}

// Changes to a group nobody has read are made in place: joining members
// older than the newest (ops of many owners arrive out of age order) does
// not copy the group per join. It did: 300 joins into a group of 300 cost
// about 10 MB of copies.
func TestUnreadGroupChangesInPlace(t *testing.T) {
	s := newReplica("r")
	join := func(owner string, seq uint64, member string, at int64) {
		op := Op{Owner: owner, Incarnation: 1, Seq: seq, Kind: Join, Scope: "s", Group: "g", Member: member, Count: 1, Time: at}
		require.Equal(t, Applied, s.Apply(&op))
	}
	for i := range 300 {
		join("a", uint64(i+1), fmt.Sprintf("a%d", i), int64(1000+i))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range 300 {
		join("b", uint64(i+1), fmt.Sprintf("b%d", i), int64(i)) // each the oldest but the previous
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("300 joins into a group of 300 allocated %d bytes", allocated)
	require.Less(t, allocated, uint64(300*1024), "a group's copy (about 17 KB) per join")
	require.Equal(t, 600, s.Group("s", "g").Len())
}

// A slice handed out by Members is a snapshot: later joins, count and
// metadata changes and leaves (in place while nobody read the group) never
// show in it, and the group itself stays ordered and findable.
func TestMembersStaysASnapshotAfterInPlaceChanges(t *testing.T) {
	s := newReplica("r")
	seq := map[string]uint64{}
	apply := func(kind OpKind, owner, member string, at int64, meta Meta) {
		seq[owner]++
		op := Op{Owner: owner, Incarnation: 1, Seq: seq[owner], Kind: kind, Scope: "s", Group: "g", Member: member, Count: 1, Time: at, Meta: meta}
		require.Equal(t, Applied, s.Apply(&op))
	}
	for i := range 40 { // above indexThreshold: the index is in use
		apply(Join, "a", fmt.Sprintf("m%d", i), int64(100+i), nil)
	}
	apply(Join, "b", "x", 50, nil) // in place: nobody read the group yet
	g := s.Group("s", "g")
	snap := g.Members()
	want := append([]Member(nil), snap...)

	apply(Join, "b", "y", 10, nil)               // inserted at the front
	apply(SetMeta, "a", "m3", 0, Meta{"k": "v"}) // replaced
	apply(Join, "a", "m4", 0, nil)               // count 2
	apply(Leave, "a", "m5", 0, nil)              // removed from the middle
	require.Equal(t, want, snap, "a published slice changed")

	// Unread again since the copy: these are in place.
	apply(Join, "b", "z", 5, nil)
	apply(Leave, "a", "m6", 0, nil)
	require.Equal(t, want, snap, "a published slice changed")

	now := g.Members()
	require.Len(t, now, 41)
	for i := 1; i < len(now); i++ {
		require.Negative(t, order(&now[i-1], false, &now[i], false), "out of order at %d", i)
	}
	for _, m := range now {
		e, ok := g.Lookup(m.Node, m.ID)
		require.True(t, ok, "%s/%s not found", m.Node, m.ID)
		require.Equal(t, m.Count, e.Count)
	}
	e, _ := g.Lookup("a", "m3")
	require.Equal(t, Meta{"k": "v"}, e.Meta)
}

// Two members of one group whose index hashes collide: the group falls
// back to scans, finds both, and rebuilds its index once one leaves.
func TestGroupIndexCollision(t *testing.T) {
	s := newReplica("r")
	for i := range 40 {
		op := Op{Owner: "a", Incarnation: 1, Seq: uint64(i + 1), Kind: Join, Scope: "s", Group: "g", Member: fmt.Sprintf("m%d", i), Count: 1, Time: int64(i)}
		require.Equal(t, Applied, s.Apply(&op))
	}
	g := s.Group("s", "g")
	// Pretend m7's hash is m3's: an insert that finds its hash taken marks
	// the collision, as indexAdd does.
	g.index[memberHash("a", "m7")] = g.index[memberHash("a", "m3")]
	g.indexCollided = true
	for i := range 40 {
		require.GreaterOrEqual(t, g.find("a", fmt.Sprintf("m%d", i)), 0, "m%d", i)
	}
	op := Op{Owner: "a", Incarnation: 1, Seq: 41, Kind: Leave, Scope: "s", Group: "g", Member: "m3", Count: 1}
	require.Equal(t, Applied, s.Apply(&op))
	require.False(t, g.indexCollided, "the index was rebuilt")
	require.Less(t, g.find("a", "m3"), 0)
	require.GreaterOrEqual(t, g.find("a", "m7"), 0)
}

// Merging a state that adds an entry to what the replica held of its
// owner (a state passed on after an exchange, or a graft) finds the
// owner's entries through the group's index: it used to list and sort the
// owner's entries of the whole group and map them by member, 19
// allocations for an owner with 1,000 entries in one group.
func TestMergeOwnerThatGrowsFindsEntriesByIndex(t *testing.T) {
	const held, runs = 1000, 50
	states := make([]OwnerState, runs+2)
	entries := make([]Entry, 0, held+runs+2)
	for i := range held {
		entries = append(entries, Entry{Member: fmt.Sprintf("m%05d", i), Count: 1, Joined: int64(i)})
	}
	for k := range states {
		entries = append(entries, Entry{Member: fmt.Sprintf("n%05d", k), Count: 1, Joined: int64(held + k)})
		states[k] = OwnerState{Owner: "a", Version: Version{Incarnation: 1, Seq: uint64(held + k + 1)}, Chain: uint64(k + 1),
			Groups: []GroupEntries{{Scope: "s", Group: "g", Entries: slices.Clone(entries)}}}
	}
	s := newReplica("r")
	require.Equal(t, Applied, s.MergeOwner(&states[0]))
	next := 1
	allocs := testing.AllocsPerRun(runs, func() {
		require.Equal(t, Applied, s.MergeOwner(&states[next]))
		next++
	})
	t.Logf("%.1f allocations per merge", allocs)
	require.Less(t, allocs, 8.0)
	require.Equal(t, held+next, s.Group("s", "g").Len())
}

// A merge that keeps every entry of the owner reports count and metadata
// changes of held entries in member order, then the joins, as a merge that
// lists the owner's entries does.
func TestMergeOwnerThatGrowsReportsInOrder(t *testing.T) {
	var got []string
	s := New(Config{Self: "r", Incarnation: 1, Observer: func(c *Change) {
		got = append(got, fmt.Sprintf("%s %s x%d %v", c.Kind, c.Entry.Member, c.Entry.Count, c.Entry.Meta))
	}})
	st := OwnerState{Owner: "a", Version: Version{Incarnation: 1, Seq: 2}, Chain: 1, Groups: []GroupEntries{{Scope: "s", Group: "g", Entries: []Entry{
		{Member: "a", Count: 1, Joined: 1}, {Member: "b", Count: 2, Joined: 2, Meta: Meta{"k": "x"}},
	}}}}
	require.Equal(t, Applied, s.MergeOwner(&st))
	got = nil
	st = OwnerState{Owner: "a", Version: Version{Incarnation: 1, Seq: 5}, Chain: 2, Groups: []GroupEntries{{Scope: "s", Group: "g", Entries: []Entry{
		{Member: "0", Count: 1, Joined: 5}, {Member: "a", Count: 2, Joined: 1}, {Member: "b", Count: 1, Joined: 2, Meta: Meta{"k": "y"}},
	}}}}
	require.Equal(t, Applied, s.MergeOwner(&st))
	require.Equal(t, []string{"join a x2 map[]", "leave b x1 map[k:x]", "meta b x1 map[k:y]", "join 0 x1 map[]"}, got)
}
