package crdt

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// ApplyRun leaves a replica exactly where Apply one op at a time does,
// and says what Apply said: over random histories of an owner that
// restarts, runs that overlap what the replica holds, start ahead of a
// gap, meet ops buffered ahead of one, or belong to a dead or tombstoned
// owner. Same state, same digest, same buffers, and the same changes
// reported to the observer in the same order.
func TestApplyRunIsApplyOneByOne(t *testing.T) {
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 3))
		incs := [][]Op{runHistory(r, 1, 40), runHistory(r, 2, 20)}
		alive := true
		var logs [2][]string
		replicas := [2]*State{}
		for k := range replicas {
			replicas[k] = New(Config{Self: "r", Incarnation: 1, PendingLimit: 8,
				Alive:    func(string) bool { return alive },
				Observer: func(c *Change) { logs[k] = append(logs[k], describeChange(c)) }})
		}
		both := func(f func(s *State)) {
			for _, s := range replicas {
				f(s)
			}
		}
		// What the replicas held before: a random part of the history in
		// a random order (gaps, buffers), maybe a tombstone.
		for range r.IntN(40) {
			h := incs[r.IntN(2)]
			op := h[r.IntN(len(h))]
			both(func(s *State) { s.Apply(&op) })
		}
		if r.IntN(8) == 0 {
			inc := uint64(1 + r.IntN(2))
			both(func(s *State) { s.Tombstone("o", inc, 0) })
		}
		for step := range 6 {
			alive = r.IntN(10) > 0
			h := incs[r.IntN(2)]
			a := r.IntN(len(h))
			run := h[a : a+1+r.IntN(len(h)-a)]
			var want RunResult
			for i := range run {
				switch want.Last = replicas[0].Apply(&run[i]); want.Last {
				case Applied:
					want.Applied++
				case Buffered:
					want.Buffered++
				}
			}
			got := replicas[1].ApplyRun(run)
			where := fmt.Sprintf("seed %d step %d: run %v..%v", seed, step, run[0].Version(), run[len(run)-1].Version())
			require.Equal(t, want, got, where)
			require.Equal(t, replicas[0].Summary(), replicas[1].Summary(), where)
			require.Equal(t, replicas[0].BucketHashes(), replicas[1].BucketHashes(), where)
			require.Equal(t, replicas[0].Snapshot(), replicas[1].Snapshot(), where)
			require.Equal(t, replicas[0].Pending("o"), replicas[1].Pending("o"), where)
			require.Equal(t, logs[0], logs[1], where)
		}
	}
}

// runHistory is n ops of owner o's incarnation inc: joins, leaves and
// metadata changes over a few groups and members.
func runHistory(r *rand.Rand, inc uint64, n int) []Op {
	o := New(Config{Self: "o", Incarnation: inc})
	ops := make([]Op, 0, n)
	for len(ops) < n {
		group, member := fmt.Sprintf("/g%d", r.IntN(3)), fmt.Sprintf("m%d", r.IntN(5))
		var meta Meta
		if r.IntN(3) == 0 {
			meta = Meta{"k": fmt.Sprint(r.IntN(3))}
		}
		switch r.IntN(4) {
		case 0:
			if op, err := o.LocalLeave("s", group, member, uint32(1+r.IntN(2))); err == nil {
				ops = append(ops, op)
			}
		case 1:
			if op, err := o.LocalSetMeta("s", group, member, meta); err == nil {
				ops = append(ops, op)
			}
		default:
			ops = append(ops, o.LocalJoin("s", group, member, uint32(1+r.IntN(2)), meta, int64(len(ops))))
		}
	}
	return ops
}
