package crdt

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The properties below run over histories made by real owners (State values
// driven through LocalJoin/LocalLeave/LocalSetMeta), so every op a replica
// sees is one the package could really produce: restarts with a higher
// incarnation, deaths announced as tombstones, and refutations of false
// tombstones included. Each test runs -crdt.seeds histories (150; a fifth
// with -short); a failure names its seed so it can be replayed alone
// (-run 'TestName/seed=N$').

// seeds is how many histories each property runs over; raise it for a
// soak run: go test -run Test -crdt.seeds 5000 ./crdt/
var seeds = flag.Int("crdt.seeds", 150, "histories per property test")

// event is one thing a replica can be told: an owner's op, an owner's
// whole state (a refute), or that an owner is dead up to an incarnation.
type event struct {
	op      *Op
	state   *OwnerState
	dead    string
	deadInc uint64
}

func (e event) String() string {
	switch {
	case e.op != nil:
		return e.op.String()
	case e.state != nil:
		return fmt.Sprintf("state %s@%s", e.state.Owner, e.state.Version)
	}
	return fmt.Sprintf("tombstone %s@%d", e.dead, e.deadInc)
}

func (e event) deliver(s *State) Result {
	switch {
	case e.op != nil:
		return s.Apply(e.op)
	case e.state != nil:
		return s.MergeOwner(e.state)
	}
	if s.Tombstone(e.dead, e.deadInc, 0) {
		return Applied
	}
	return Duplicate
}

// history is a run of several owners, their events interleaved in an order
// that keeps each owner's own order: the order a perfect network delivers.
type history struct {
	events []event
	// last is each owner's State at the end: what it would answer a pull with.
	last map[string]*State
	// points are owner snapshots taken along the way, for merge tests.
	points []Delta
}

type historyShape struct {
	owners, steps int
	// tombstones allows deaths and false accusations (refutations).
	tombstones bool
}

var defaultShape = historyShape{owners: 4, steps: 40, tombstones: true}

var (
	scopes  = []string{"s1", "s2"}
	groups  = []string{"/a", "/b", "/c/d"}
	members = []string{"m1", "m2", "m3", "m4"}
	metas   = []Meta{nil, {"zone": "eu"}, {"zone": "us", "rack": "3"}, {}}

	wideMembers = func() []string {
		ms := make([]string, 24)
		for i := range ms {
			ms[i] = fmt.Sprintf("w%02d", i)
		}
		return ms
	}()
)

func genHistory(r *rand.Rand, shape historyShape) *history {
	h := &history{last: make(map[string]*State)}
	perOwner := make([][]event, shape.owners)
	now := int64(0)
	// A third of the histories crowd one group with many members, so
	// groups grow past the size at which they keep a member index.
	pool, steps := members, shape.steps
	wide := r.IntN(3) == 0
	if wide {
		pool, steps = wideMembers, 3*shape.steps
	}
	for i := range perOwner {
		name := fmt.Sprintf("n%d", i)
		inc := uint64(r.IntN(3) + 1)
		o := New(Config{Self: name, Incarnation: inc})
		var evs []event
		emit := func(op Op) { evs = append(evs, event{op: &op}) }
		for range steps {
			now += int64(r.IntN(3)) // equal times happen: a rejoin at the same instant
			scope, group, member := pick(r, scopes), pick(r, groups), pick(r, pool)
			if wide {
				scope, group = scopes[0], groups[0]
			}
			switch k := r.IntN(20); {
			case k < 9:
				emit(o.LocalJoin(scope, group, member, uint32(r.IntN(3)), pick(r, metas), now))
			case k < 15:
				if op, err := o.LocalLeave(scope, group, member, uint32(r.IntN(3))); err == nil {
					emit(op)
				}
			case k < 17:
				if op, err := o.LocalSetMeta(scope, group, member, pick(r, metas)); err == nil {
					emit(op)
				}
			case k < 18:
				// The process restarts: a new incarnation starting empty,
				// sometimes after the cluster declared the old one dead.
				_, v := o.Self()
				if shape.tombstones && r.IntN(2) == 0 {
					evs = append(evs, event{dead: name, deadInc: v.Incarnation})
				}
				o = New(Config{Self: name, Incarnation: v.Incarnation + uint64(r.IntN(2)+1)})
				emit(o.LocalJoin(scope, group, member, 1, nil, now))
			case k < 19 && shape.tombstones:
				// A false accusation: the live owner hears of its own
				// tombstone and refutes it with a new incarnation.
				_, v := o.Self()
				evs = append(evs, event{dead: name, deadInc: v.Incarnation})
				o.Tombstone(name, v.Incarnation, 0)
				st := o.Refute()
				evs = append(evs, event{state: &st})
				emit(o.LocalJoin(scope, group, member, 1, nil, now))
			}
			if r.IntN(8) == 0 {
				h.points = append(h.points, o.Snapshot())
			}
		}
		if shape.tombstones && r.IntN(4) == 0 {
			_, v := o.Self()
			evs = append(evs, event{dead: name, deadInc: v.Incarnation})
		}
		h.last[name] = o
		h.points = append(h.points, o.Snapshot())
		perOwner[i] = evs
	}
	h.events = interleave(r, perOwner)
	return h
}

// interleave merges per-owner streams at random, keeping each one's order.
func interleave(r *rand.Rand, streams [][]event) []event {
	var out []event
	idx := make([]int, len(streams))
	left := 0
	for _, s := range streams {
		left += len(s)
	}
	for ; left > 0; left-- {
		n := r.IntN(left)
		for i, s := range streams {
			if rest := len(s) - idx[i]; n < rest {
				out = append(out, s[idx[i]])
				idx[i]++
				break
			} else {
				n -= rest
			}
		}
	}
	return out
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func newReplica(name string) *State { return New(Config{Self: name, Incarnation: 1}) }

func feed(s *State, evs []event) {
	for _, e := range evs {
		e.deliver(s)
	}
}

// scramble returns evs shuffled, each event repeated with probability dup
// and dropped with probability loss.
func scramble(r *rand.Rand, evs []event, dup, loss float64) []event {
	var out []event
	for _, e := range evs {
		if r.Float64() < loss {
			continue
		}
		out = append(out, e)
		for r.Float64() < dup {
			out = append(out, e)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// feedUntilSettled delivers evs in a fresh random order, again and again,
// until a whole pass changes nothing. It models a sender that retransmits
// until acknowledged; each pass applies at least the lowest missing op of
// every owner, so it ends.
func feedUntilSettled(t *testing.T, r *rand.Rand, s *State, evs []event) {
	for pass := 0; ; pass++ {
		require.Less(t, pass, len(evs)+2, "delivery does not settle")
		changed := false
		for _, e := range scramble(r, evs, 0.2, 0) {
			if res := e.deliver(s); res == Applied || res == Buffered {
				changed = true
			}
		}
		if !changed {
			return
		}
	}
}

// view is what a replica holds of the history's owners (named n0, n1, ...):
// replicas' own owner lines (always empty here, and spread to each other by
// merges) are left out, so replicas with different names can be compared.
func view(s *State) Delta {
	d := s.Snapshot()
	d.Owners = slices.DeleteFunc(d.Owners, func(st OwnerState) bool { return !strings.HasPrefix(st.Owner, "n") })
	return d
}

func requireSameView(t *testing.T, want, got *State, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, view(want), view(got), msgAndArgs...)
}

func forSeeds(t *testing.T, fn func(t *testing.T, r *rand.Rand)) {
	runs := *seeds
	if testing.Short() {
		runs /= 5
	}
	for seed := range uint64(runs) {
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			fn(t, rand.New(rand.NewPCG(seed, 0x5eed)))
		})
		if !ok {
			return
		}
	}
}

// partial is a replica that saw some of a history: a random subset of the
// events in a random order, with duplicates.
func partial(r *rand.Rand, name string, h *history) *State {
	s := newReplica(name)
	feed(s, scramble(r, h.events, 0.1, r.Float64()))
	return s
}

// unbuffered is like partial, but an op that would wait for a gap is lost
// instead, so the replica holds nothing in its pending buffers. Buffered ops
// are outside the lattice: a merge that fills the gap before them drains
// them, so a⊔b can be ahead of b⊔a by exactly what a had buffered. The
// lattice laws are about the merged states themselves.
func unbuffered(t *testing.T, r *rand.Rand, name string, h *history) *State {
	s := newReplica(name)
	for _, e := range scramble(r, h.events, 0.1, r.Float64()) {
		if e.op != nil {
			v, known := s.Owner(e.op.Owner)
			switch {
			case !known && e.op.Seq > 1,
				known && v.Incarnation < e.op.Incarnation && e.op.Seq > 1,
				known && v.Incarnation == e.op.Incarnation && e.op.Seq > v.Seq+1:
				continue
			}
		}
		require.NotEqual(t, Buffered, e.deliver(s))
	}
	return s
}

func merged(into *State, from ...*State) *State {
	for _, f := range from {
		d := f.Snapshot()
		into.Merge(&d)
	}
	return into
}

func TestMergeIsASemilattice(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, defaultShape)
		// Three states of one replica (same name) as three runs of the
		// network would leave it; rebuilt from a seed whenever a fresh copy
		// is needed, so no copy depends on Merge.
		seeds := [3]uint64{r.Uint64(), r.Uint64(), r.Uint64()}
		build := func(i int) *State { return unbuffered(t, rand.New(rand.NewPCG(seeds[i], 1)), "r", h) }
		a, b, c := build(0), build(1), build(2)

		ab, ba := merged(build(0), b), merged(build(1), a)
		require.Equal(t, ab.Snapshot(), ba.Snapshot(), "commutative")

		abc1 := merged(merged(build(0), b), c)
		bc := merged(build(1), c)
		abc2 := merged(build(0), bc)
		require.Equal(t, abc1.Snapshot(), abc2.Snapshot(), "associative")

		require.Equal(t, a.Snapshot(), merged(build(0), a).Snapshot(), "idempotent")
		require.Equal(t, ab.Snapshot(), merged(merged(build(0), b), b, a).Snapshot(), "idempotent after merge")

		// The join is the least upper bound: per owner, the higher version
		// unless a tombstone covers it; per dead owner, the higher tombstone.
		wantDead := map[string]uint64{}
		wantLive := map[string]Version{}
		for _, s := range []*State{a, b, c} {
			dg := s.Digest()
			for _, ov := range dg.Tombstones {
				wantDead[ov.Owner] = max(wantDead[ov.Owner], ov.Incarnation)
			}
			for _, ov := range dg.Owners {
				if v, ok := wantLive[ov.Owner]; !ok || v.Less(ov.Version) {
					wantLive[ov.Owner] = ov.Version
				}
			}
		}
		got := abc1.Digest()
		gotDead := map[string]uint64{}
		for _, ov := range got.Tombstones {
			gotDead[ov.Owner] = ov.Incarnation
		}
		require.Equal(t, wantDead, gotDead)
		gotLive := map[string]Version{}
		for _, ov := range got.Owners {
			gotLive[ov.Owner] = ov.Version
		}
		for owner, v := range wantLive {
			if inc, dead := wantDead[owner]; dead && v.Incarnation <= inc {
				delete(wantLive, owner)
			}
		}
		require.Equal(t, wantLive, gotLive)
	})
}

// Any delivery order, with duplicates, ends in the in-order state once every
// op has been delivered at least once after its predecessors were: the test
// re-delivers (feedUntilSettled) rather than pulling, so it exercises the
// pending buffer and its draining, and the refusal of older incarnations.
func TestAnyDeliveryOrderGivesTheInOrderState(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, defaultShape)
		inOrder := newReplica("r1")
		feed(inOrder, h.events)

		// A small buffer forces the overflow path too.
		scrambled := New(Config{Self: "r2", Incarnation: 1, PendingLimit: 1 + r.IntN(8)})
		feedUntilSettled(t, r, scrambled, h.events)
		requireSameView(t, inOrder, scrambled)
		for owner := range h.last {
			require.Zero(t, scrambled.Pending(owner), "nothing stays buffered")
		}
	})
}

// The in-order replica holds exactly what every live owner holds.
func TestInOrderDeliveryMatchesTheOwners(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, defaultShape)
		s := newReplica("r")
		feed(s, h.events)
		got := view(s)
		for owner, o := range h.last {
			_, v := o.Self()
			i := slices.IndexFunc(got.Owners, func(st OwnerState) bool { return st.Owner == owner })
			if inc, dead := s.Tombstoned(owner); dead && inc >= v.Incarnation {
				require.Equal(t, -1, i, "dead owner %s is gone", owner)
				continue
			}
			require.GreaterOrEqual(t, i, 0, "live owner %s is known", owner)
			require.Equal(t, o.Snapshot().Owners[0], got.Owners[i])
		}
	})
}

// Five replicas each get a scrambled, lossy copy of the stream. A replica
// that buffers an op pulls the owner's state from the op's sender, as the
// design prescribes; the sender is anyone who applied the op, modelled here
// by the owner's snapshot at that op. Then one round of anti-entropy runs:
// every replica sends its digest to every other, each answers with the
// delta computed from its state at the start of the round, and every
// replica merges the four deltas it got. After that one round all five have
// identical digests and snapshots (owners and tombstones).
//
// The pull matters: without it a replica could hold buffered ops that only
// drain once a merge fills the gap before them, putting it ahead of the
// others after the round; the next exchange tick repairs that, but it would
// not be one round.
func TestFiveReplicasConvergeAfterOneRound(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, defaultShape)
		sender := senderStates(h)
		const n = 5
		reps := make([]*State, n)
		for i := range reps {
			reps[i] = newReplica(fmt.Sprintf("r%d", i))
			for _, e := range scramble(r, h.events, 0.3, 0.4*r.Float64()) {
				if e.deliver(reps[i]) == Buffered {
					d := sender[e.op]
					reps[i].Merge(&d)
				}
			}
		}
		for _, rep := range reps {
			for owner := range h.last {
				require.Zero(t, rep.Pending(owner), "a pull at a buffered op's version releases the buffer")
			}
		}
		deltas := make([][]Delta, n)
		for i := range reps {
			dg := reps[i].Digest()
			for j := range reps {
				if i != j {
					deltas[i] = append(deltas[i], reps[j].Delta(&dg))
				}
			}
		}
		for i := range reps {
			for k := range deltas[i] {
				reps[i].Merge(&deltas[i][k])
			}
		}
		want := reps[0].Digest()
		wantSnap := reps[0].Snapshot()
		for i := 1; i < n; i++ {
			got := reps[i].Digest()
			require.True(t, want.Equal(&got), "replica %d digest\nwant %v\ngot  %v", i, want, got)
			gotSnap := reps[i].Snapshot()
			require.Equal(t, wantSnap.Owners, gotSnap.Owners, "replica %d owners", i)
			require.Equal(t, wantSnap.Tombstones, gotSnap.Tombstones, "replica %d tombstones", i)
		}
		// A second round finds nothing to send.
		for i := range reps {
			dg := reps[i].Digest()
			for j := range reps {
				d := reps[j].Delta(&dg)
				require.True(t, d.Empty(), "r%d still has something for r%d: %+v", j, i, d)
			}
		}
	})
}

// A merge that fills the gap before buffered ops applies them at once: a
// replica that missed the start of an owner's incarnation and buffered the
// rest ends, after one pull, exactly where the owner is.
func TestMergeReleasesBufferedOps(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, historyShape{owners: 1, steps: 40})
		sender := senderStates(h)
		var last []*Op // the ops of the owner's last incarnation
		for _, e := range h.events {
			if len(last) > 0 && last[0].Incarnation != e.op.Incarnation {
				last = nil
			}
			last = append(last, e.op)
		}
		if len(last) < 2 {
			return
		}
		k := 1 + r.IntN(len(last)-1) // the replica misses seq 1..k
		missed := map[*Op]bool{}
		for _, op := range last[:k] {
			missed[op] = true
		}
		var rest []event
		for _, e := range h.events {
			if !missed[e.op] {
				rest = append(rest, e)
			}
		}
		s := newReplica("r")
		feed(s, scramble(r, rest, 0.2, 0))
		require.Equal(t, len(last)-k, s.Pending("n0"), "everything after the gap waits")

		pull := sender[last[k-1]]
		s.Merge(&pull)
		require.Zero(t, s.Pending("n0"))
		want := newReplica("w")
		feed(want, h.events)
		requireSameView(t, want, s)
	})
}

// senderStates replays each owner's ops to find its state right after each
// op: what a peer that applied the op would answer a pull with.
func senderStates(h *history) map[*Op]Delta {
	out := make(map[*Op]Delta)
	owners := make(map[string]*State)
	for _, e := range h.events {
		if e.state != nil {
			if o := owners[e.state.Owner]; o != nil {
				o.MergeOwner(e.state)
			}
		}
		if e.op == nil {
			continue
		}
		o := owners[e.op.Owner]
		if o == nil {
			o = newReplica("sender")
			owners[e.op.Owner] = o
		}
		o.Apply(e.op)
		d := view(o)
		d.Tombstones = nil
		i := slices.IndexFunc(d.Owners, func(st OwnerState) bool { return st.Owner == e.op.Owner })
		d.Owners = d.Owners[i : i+1]
		out[e.op] = d
	}
	return out
}

// A tombstone for (owner, inc) wins over every op of that incarnation or an
// older one and over every merge of an older state, whatever the order; a
// refutation's new incarnation comes back.
func TestTombstoneIsNeverResurrected(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		shape := historyShape{owners: 1, steps: 40}
		h := genHistory(r, shape)
		x := h.last["n0"]
		_, v := x.Self()

		// Stale replicas that saw parts of x's history, to merge from.
		var stale []*State
		for i := range 3 {
			stale = append(stale, partial(r, fmt.Sprintf("old%d", i), h))
		}
		type step func(*State)
		steps := []step{func(s *State) { s.Tombstone("n0", v.Incarnation, 0) }}
		for _, e := range scramble(r, h.events, 0.3, 0) {
			steps = append(steps, func(s *State) { e.deliver(s) })
		}
		for _, o := range stale {
			steps = append(steps, func(s *State) { merged(s, o) })
		}
		for _, p := range h.points {
			steps = append(steps, func(s *State) { s.Merge(&p) })
		}
		r.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })

		var changes []*Change
		s := New(Config{Self: "r", Incarnation: 1, Observer: func(c *Change) { changes = append(changes, new(*c)) }})
		tombstoned := false
		for _, st := range steps {
			st(s)
			if inc, ok := s.Tombstoned("n0"); ok && inc == v.Incarnation && !tombstoned {
				tombstoned, changes = true, nil
			}
			if tombstoned {
				require.Empty(t, changes, "a change for a dead owner after its tombstone")
				_, known := s.Owner("n0")
				require.False(t, known, "the dead owner came back")
			}
		}
		require.True(t, tombstoned)
		require.Empty(t, s.Scopes(), "no entries remain")
		for _, e := range h.events {
			if e.op != nil {
				require.Equal(t, Refused, s.Apply(e.op), "late op %v", e.op)
			}
		}

		// The owner was alive after all: it hears of its tombstone and
		// refutes it; its new incarnation comes back with its entries.
		merged(x, s)
		require.True(t, x.NeedsRefute())
		st := x.Refute()
		require.Equal(t, Applied, s.MergeOwner(&st))
		want := view(x)
		got := view(s)
		require.Equal(t, want.Owners, got.Owners, "the refuted owner is back as it is")
		dg := s.Digest()
		d := x.Delta(&dg)
		require.True(t, d.Empty(), "nothing left for anti-entropy: %+v", d)
	})
}

// Applying an owner's ops and merging its snapshots (in any order, stale
// ones included) give the same replica state.
func TestApplyingOpsEqualsMergingStates(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, defaultShape)
		a := newReplica("a")
		feed(a, h.events)

		b := newReplica("b")
		var steps []func()
		for _, p := range h.points {
			steps = append(steps, func() { b.Merge(&p) })
		}
		for _, e := range h.events {
			if e.op == nil {
				steps = append(steps, func() { e.deliver(b) })
			}
		}
		r.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
		for _, st := range steps {
			st()
		}
		requireSameView(t, a, b)
	})
}

type entryKey struct{ scope, group, owner, member string }

// listener rebuilds the registry from Observer changes alone, checking
// every change is one: counts move the way the kind says, and groups are
// created and removed exactly when they appear and vanish.
//
// It also holds the groups' member slices to their promises: ordered local
// first then by age, and copy-on-write, so a slice a reader got before a
// change still shows what it showed then.
type listener struct {
	t       *testing.T
	s       *State
	entries map[entryKey]Entry
	groups  map[[2]string]*Group
	// published are member slices handed out at the last check, with a
	// deep copy of what they showed.
	published [][2][]Member
}

func newListener(t *testing.T, name string) *listener {
	l := &listener{t: t, entries: map[entryKey]Entry{}, groups: map[[2]string]*Group{}}
	l.s = New(Config{Self: name, Incarnation: 1, Observer: l.observe})
	return l
}

func (l *listener) observe(c *Change) {
	t := l.t
	gk := [2]string{c.Group.Scope, c.Group.Name}
	k := entryKey{c.Group.Scope, c.Group.Name, c.Owner, c.Entry.Member}
	prev, had := l.entries[k]
	switch {
	case c.Kind == Joined && c.Entry.Count <= prev.Count:
		t.Fatalf("a join that does not raise the count (was %d): %+v", prev.Count, c)
	case c.Kind == Left && (!had || c.Entry.Count >= prev.Count):
		t.Fatalf("a leave that does not lower the count (was %d, known %t): %+v", prev.Count, had, c)
	case c.Kind == MetaChanged && (!had || c.Entry.Count != prev.Count):
		t.Fatalf("a meta change that changes the count (was %d, known %t): %+v", prev.Count, had, c)
	case c.Kind < Joined || c.Kind > MetaChanged:
		t.Fatalf("change kind %v", c.Kind)
	}
	if c.Entry.Count == 0 {
		delete(l.entries, k)
	} else {
		l.entries[k] = c.Entry
	}
	if _, known := l.groups[gk]; known == c.GroupCreated {
		t.Fatalf("GroupCreated is %t for a group the listener knew (%t): %+v", c.GroupCreated, known, c)
	}
	if c.GroupCreated {
		l.groups[gk] = c.Group
	}
	if l.groups[gk] != c.Group {
		t.Fatalf("a change names another group than the one the listener knows: %+v", c)
	}
	if c.GroupRemoved {
		if c.Group.Len() != 0 {
			t.Fatalf("GroupRemoved for a group of %d: %+v", c.Group.Len(), c)
		}
		delete(l.groups, gk)
	} else if l.s.Group(c.Group.Scope, c.Group.Name) != c.Group {
		t.Fatalf("the change's group is not the state's: %+v", c)
	}
}

// check compares what the listener heard with what the state holds.
func (l *listener) check() {
	t := l.t
	held := map[entryKey]Entry{}
	heldGroups := map[[2]string]*Group{}
	for _, scope := range l.s.Scopes() {
		l.s.Groups(scope, func(g *Group) {
			heldGroups[[2]string{scope, g.Name}] = g
			g.Each(func(owner string, e *Entry) {
				held[entryKey{scope, g.Name, owner, e.Member}] = *e
			})
		})
	}
	require.Equal(t, heldGroups, l.groups)

	// Plain ifs below: these loops run often, and testify's helpers cost
	// more than the checks.
	for _, p := range l.published {
		if !reflect.DeepEqual(p[0], p[1]) {
			t.Fatalf("a published member slice changed under its reader:\nwas %+v\nnow %+v", p[1], p[0])
		}
	}
	l.published = l.published[:0]
	self, _ := l.s.Self()
	for _, g := range heldGroups {
		ms := g.Members()
		if len(ms) != g.Len() {
			t.Fatalf("%d members, Len %d", len(ms), g.Len())
		}
		for i := range ms {
			if (i < g.Local()) != (ms[i].Node == self) {
				t.Fatalf("member %d %+v: local members come first (Local %d)", i, ms[i], g.Local())
			}
			if i > 0 && order(&ms[i-1], ms[i-1].Node == self, &ms[i], ms[i].Node == self) >= 0 {
				t.Fatalf("members out of order at %d: %+v, %+v", i, ms[i-1], ms[i])
			}
			if e, ok := g.Lookup(ms[i].Node, ms[i].ID); !ok || e.Count != ms[i].Count {
				t.Fatalf("Lookup(%s, %s) = %+v, %t; the slice holds %+v", ms[i].Node, ms[i].ID, e, ok, ms[i])
			}
		}
		l.published = append(l.published, [2][]Member{ms, slices.Clone(ms)})
	}
	require.Equal(t, len(held), len(l.entries))
	for k, e := range held {
		got := l.entries[k]
		require.Equal(t, e.Count, got.Count, "%v", k)
		require.Equal(t, e.Joined, got.Joined, "%v", k)
		require.True(t, sameMeta(e.Meta, got.Meta), "%v meta %v, heard %v", k, e.Meta, got.Meta)
	}
}

func TestObserverReplayReproducesTheState(t *testing.T) {
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, defaultShape)
		want := newReplica("want")
		feed(want, h.events)

		l := newListener(t, "r")
		others := []*State{partial(r, "o1", h), partial(r, "o2", h)}
		var steps []func()
		for _, e := range scramble(r, h.events, 0.2, 0.2) {
			steps = append(steps, func() { e.deliver(l.s) })
		}
		for _, o := range others {
			steps = append(steps, func() { merged(l.s, o) })
		}
		// The replica is an owner too, so its groups have a local part.
		for i := range 30 {
			member := pick(r, members)
			if i%3 == 2 {
				steps = append(steps, func() { _, _ = l.s.LocalLeave(scopes[0], groups[0], member, 1) })
			} else {
				steps = append(steps, func() { l.s.LocalJoin(scopes[0], groups[0], member, 1, nil, int64(i)) })
			}
		}
		for _, p := range h.points {
			if r.IntN(3) == 0 {
				steps = append(steps, func() { l.s.Merge(&p) })
			}
		}
		r.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
		for _, st := range steps {
			st()
			if r.IntN(4) == 0 {
				l.check()
			}
		}
		// Then everything arrives: the listener ends with the full state.
		feedUntilSettled(t, r, l.s, h.events)
		l.check()
		requireSameView(t, want, l.s)
	})
}

// The generator must produce what the properties claim to cover; a change
// that made it stop restarting owners or refuting would leave them hollow.
func TestHistoriesCoverTheRules(t *testing.T) {
	var restarts, deaths, refutes, buffered, refused, leaves, metas, biggest int
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		h := genHistory(r, defaultShape)
		incs := map[string]uint64{}
		for _, e := range h.events {
			switch {
			case e.state != nil:
				refutes++
			case e.op == nil:
				deaths++
			case e.op.Kind == Leave:
				leaves++
			case e.op.Kind == SetMeta:
				metas++
			}
			if e.op != nil {
				if inc, ok := incs[e.op.Owner]; ok && inc < e.op.Incarnation {
					restarts++
				}
				incs[e.op.Owner] = e.op.Incarnation
			}
		}
		s := newReplica("r")
		for _, e := range scramble(r, h.events, 0.1, 0) {
			switch e.deliver(s) {
			case Buffered:
				buffered++
			case Refused:
				refused++
			}
			for _, scope := range s.Scopes() {
				s.Groups(scope, func(g *Group) { biggest = max(biggest, g.Len()) })
			}
		}
	}
	require.Greater(t, biggest, indexThreshold, "some group grows past the member index threshold")
	for name, n := range map[string]int{
		"incarnation changes": restarts, "tombstones": deaths, "refutes": refutes, "buffered": buffered,
		"refused": refused, "leaves": leaves, "meta updates": metas,
	} {
		require.Positive(t, n, name)
	}
}
