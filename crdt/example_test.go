package crdt_test

import (
	"fmt"

	"github.com/cpggo/cpg/crdt"
)

// An owner changes its own entries with the Local* calls and broadcasts the
// ops they return; every other replica applies them in order, buffering one
// that arrives ahead of a gap.
func ExampleState_LocalJoin() {
	a := crdt.New(crdt.Config{Self: "a", Incarnation: 1})
	b := crdt.New(crdt.Config{Self: "b", Incarnation: 1, Observer: func(c *crdt.Change) {
		fmt.Printf("b hears: %s %s by %s, count %d\n", c.Kind, c.Entry.Member, c.Owner, c.Entry.Count)
	}})

	join := a.LocalJoin("prod", "/svc/db", "db-1", 1, crdt.Meta{"zone": "eu"}, 1700000000)
	leave, err := a.LocalLeave("prod", "/svc/db", "db-1", 1)
	if err != nil {
		panic(err)
	}

	// The network reorders the two ops.
	fmt.Println(leave.String(), "->", b.Apply(&leave))
	fmt.Println(join.String(), "->", b.Apply(&join))
	fmt.Println(join.String(), "->", b.Apply(&join))
	fmt.Println("group left on b:", b.Group("prod", "/svc/db") != nil)
	// Output:
	// a@1.2 leave prod//svc/db/db-1 x1 -> buffered
	// b hears: join db-1 by a, count 1
	// b hears: leave db-1 by a, count 0
	// a@1.1 join prod//svc/db/db-1 x1 -> applied
	// a@1.1 join prod//svc/db/db-1 x1 -> duplicate
	// group left on b: false
}

// Anti-entropy: a replica sends its digest, the peer answers with the delta
// of owners where it is ahead, and the replica merges it. Two exchanges make
// both replicas equal, whatever either missed.
func ExampleState_Delta() {
	a := crdt.New(crdt.Config{Self: "a", Incarnation: 1})
	b := crdt.New(crdt.Config{Self: "b", Incarnation: 1})
	a.LocalJoin("prod", "/svc/web", "web-1", 1, nil, 1700000000)
	b.LocalJoin("prod", "/svc/web", "web-2", 1, nil, 1700000001)
	b.Tombstone("c", 7, 0) // b knows node c's incarnation 7 is dead (at time 0)

	exchange := func(to, from *crdt.State) {
		dg := to.Digest()
		d := from.Delta(&dg)
		// On the wire: crdt.AppendDigest, crdt.AppendDelta and their decoders.
		to.Merge(&d)
	}
	exchange(a, b)
	exchange(b, a)

	da, db := a.Digest(), b.Digest()
	fmt.Println("digests equal:", da.Equal(&db))
	for _, ov := range da.Owners {
		fmt.Printf("owner %s at %s\n", ov.Owner, ov.Version)
	}
	for _, ov := range da.Tombstones {
		fmt.Printf("dead %s up to incarnation %d\n", ov.Owner, ov.Incarnation)
	}
	a.Group("prod", "/svc/web").Each(func(owner string, e *crdt.Entry) {
		fmt.Println(owner, e.Member)
	})
	// Unordered output:
	// digests equal: true
	// owner a at 1.1
	// owner b at 1.1
	// dead c up to incarnation 7
	// a web-1
	// b web-2
}

// A Snapshot is the whole state as a delta; merging it twice, or in any
// order with other snapshots, gives the same state.
func ExampleState_Merge() {
	a := crdt.New(crdt.Config{Self: "a", Incarnation: 1})
	a.LocalJoin("prod", "/q", "worker", 2, nil, 1)

	r := crdt.New(crdt.Config{Self: "r", Incarnation: 1})
	snap := a.Snapshot()
	r.Merge(&snap)
	r.Merge(&snap)
	e, _ := r.Group("prod", "/q").Lookup("a", "worker")
	fmt.Println("count:", e.Count)
	// Output:
	// count: 2
}

// A hashed exchange: peers compare the O(1) summary first; only if it
// differs, the bucket hashes; then digest lines and deltas only for the
// buckets that differ. Converged peers exchange a few bytes.
func ExampleState_BucketHashes() {
	a := crdt.New(crdt.Config{Self: "a", Incarnation: 1})
	b := crdt.New(crdt.Config{Self: "b", Incarnation: 1})
	for i := range 100 {
		op := a.LocalJoin("prod", "/svc/web", fmt.Sprintf("web-%d", i), 1, nil, 1700000000)
		b.Apply(&op)
	}
	c := crdt.New(crdt.Config{Self: "c", Incarnation: 1})
	op := c.LocalJoin("prod", "/svc/web", "web-c", 1, nil, 1700000001)
	a.Apply(&op) // b missed c's op

	fmt.Println("summaries equal:", a.Summary() == b.Summary())
	ha, hb := a.BucketHashes(), b.BucketHashes()
	var differ []int
	for i := range ha {
		if ha[i] != hb[i] {
			differ = append(differ, i)
		}
	}
	fmt.Println("buckets that differ:", len(differ), differ[0] == crdt.Bucket("c"))
	dg := b.DigestOf(differ)
	d := a.DeltaOf(&dg, differ)
	b.Merge(&d)
	fmt.Println("summaries equal:", a.Summary() == b.Summary())
	// Output:
	// summaries equal: false
	// buckets that differ: 1 true
	// summaries equal: true
}

// A node that hears of its own tombstone refutes it: a new incarnation,
// announced as its whole state in one piece, which a replica merges at
// once, so subscribers there hear nothing for members that did not change.
func ExampleState_Refute() {
	a := crdt.New(crdt.Config{Self: "a", Incarnation: 1})
	r := crdt.New(crdt.Config{Self: "r", Incarnation: 1, Observer: func(c *crdt.Change) {
		fmt.Printf("r hears: %s %s\n", c.Kind, c.Entry.Member)
	}})
	for _, m := range []string{"db-1", "db-2"} {
		op := a.LocalJoin("prod", "/svc/db", m, 1, nil, 1700000000)
		r.Apply(&op)
	}
	a.Tombstone("a", 1, 1700000005) // a false verdict reaches a itself
	fmt.Println("needs refute:", a.NeedsRefute())
	st := a.Refute()
	fmt.Println("announces", st.Owner, st.Version, "with", len(st.Groups[0].Entries), "members")
	fmt.Println("r:", r.MergeOwner(&st))
	// Output:
	// r hears: join db-1
	// r hears: join db-2
	// needs refute: true
	// announces a 2.1 with 2 members
	// r: applied
}
