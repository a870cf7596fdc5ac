package crdt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// collectingReplica is a replica with a membership layer and a clock: it
// counts its steps as time, stamps tombstones with it, and stops listing an
// owner as alive once it hears the owner's final death (the membership
// layer forgets dead nodes), so its tombstones can be collected.
type collectingReplica struct {
	s     *State
	now   int64
	dead  map[string]bool
	final map[string]uint64 // owner -> the incarnation of its final death
}

func newCollectingReplica(name string, final map[string]uint64) *collectingReplica {
	c := &collectingReplica{dead: map[string]bool{}, final: final}
	c.s = New(Config{Self: name, Incarnation: 1, Alive: func(owner string) bool { return !c.dead[owner] }})
	return c
}

// deliver hands the replica one event and reports whether it changed
// anything.
func (c *collectingReplica) deliver(e event) bool {
	c.now++
	switch {
	case e.op != nil:
		res := c.s.Apply(e.op)
		return res == Applied || res == Buffered
	case e.state != nil:
		return c.s.MergeOwner(e.state) == Applied
	}
	changed := c.s.Tombstone(e.dead, e.deadInc, c.now)
	if inc, ok := c.final[e.dead]; ok && inc == e.deadInc {
		c.dead[e.dead] = true
	}
	return changed
}

// finalDeaths finds the owners whose last event is their death.
func finalDeaths(h *history) map[string]uint64 {
	last := map[string]event{}
	for _, e := range h.events {
		switch {
		case e.op != nil:
			last[e.op.Owner] = e
		case e.state != nil:
			last[e.state.Owner] = e
		default:
			last[e.dead] = e
		}
	}
	final := map[string]uint64{}
	for owner, e := range last {
		if e.op == nil && e.state == nil {
			final[owner] = e.deadInc
		}
	}
	return final
}

// With ops buffered ahead of gaps, merge is not commutative: a merge that
// fills a gap drains the ops behind it, so a⊔b can be ahead of b⊔a by what
// a had buffered. What holds is convergence once every gap is filled:
// replicas that saw a history in any order, with losses, duplicates,
// exchanges between them, and tombstones collected along the way, hold the
// same owners as a replica that saw it in order, once every event has been
// delivered after its predecessors and exchanges find nothing more to send.
// The generator covers restarts, deaths, false accusations and refutes.
func TestConvergesOnceEveryGapIsFilled(t *testing.T) {
	collected := 0
	forSeeds(t, func(t *testing.T, r *rand.Rand) {
		h := genHistory(r, defaultShape)
		final := finalDeaths(h)
		inOrder := newReplica("w")
		feed(inOrder, h.events)

		reps := make([]*collectingReplica, 4)
		for i := range reps {
			reps[i] = newCollectingReplica(fmt.Sprintf("r%d", i), final)
		}
		// Phase 1: a lossy, scrambled run with exchanges and collections.
		for i, c := range reps {
			for _, e := range scramble(r, h.events, 0.2, r.Float64()) {
				c.deliver(e)
				switch r.IntN(20) {
				case 0:
					other := reps[(i+1+r.IntN(len(reps)-1))%len(reps)]
					dg := c.s.Digest()
					d := other.s.Delta(&dg)
					c.s.Merge(&d)
				case 1:
					collected += c.s.CollectTombstones(c.now - int64(r.IntN(20)))
				}
			}
		}
		// Phase 2: every gap fills (the network retransmits until each
		// event has been delivered after its predecessors).
		for _, c := range reps {
			for pass := 0; ; pass++ {
				require.Less(t, pass, len(h.events)+2, "delivery does not settle")
				changed := false
				for _, e := range scramble(r, h.events, 0, 0) {
					changed = c.deliver(e) || changed
				}
				if !changed {
					break
				}
			}
		}
		// Phase 3: exchanges until one round sends nothing.
		for round := 0; ; round++ {
			require.Less(t, round, 20, "exchanges do not settle")
			sent := false
			for _, a := range reps {
				for _, b := range reps {
					if a != b {
						dg := a.s.Digest()
						d := b.s.Delta(&dg)
						sent = sent || len(d.Owners) > 0
						a.s.Merge(&d)
					}
				}
			}
			if !sent {
				break
			}
		}
		for _, c := range reps {
			c.s.CollectTombstones(math.MaxInt64)
			// Owners only: the in-order replica never collected its tombstones.
			require.Equal(t, view(inOrder).Owners, view(c.s).Owners)
			require.Equal(t, reps[0].s.Summary(), c.s.Summary())
			for owner := range h.last {
				require.Zero(t, c.s.Pending(owner), "every gap filled")
			}
		}
	})
	require.Positive(t, collected, "the runs collect tombstones along the way")
}
