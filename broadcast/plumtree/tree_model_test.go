package plumtree

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTreeSetMatchesAModel drives a treeSet and a plain model (per root, the
// set of lazy neighbours; a new neighbour is lazy in the trees that have a
// lazy link and eager in the others, a lost one leaves every tree) with the same random operations, over more neighbours
// than a mask word holds, and compares every tree after each step.
func TestTreeSetMatchesAModel(t *testing.T) {
	for seed := range uint64(3) {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := newTreeSet(1 << 16)
		lazy := map[string]map[string]bool{} // root -> lazy neighbours
		var neighbours []string
		peer := func() string { return fmt.Sprintf("p%03d", rng.IntN(150)) }
		root := func() string { return fmt.Sprintf("r%d", rng.IntN(6)) }
		for step := range 1200 {
			switch op := rng.IntN(10); {
			case op < 2 || step < 200:
				p := peer()
				s.neighborUp(p)
				if !slices.Contains(neighbours, p) {
					neighbours = append(neighbours, p)
					for _, l := range lazy {
						if len(l) > 0 {
							l[p] = true
						}
					}
				}
			case op < 4:
				p := peer()
				s.neighborDown(p)
				neighbours = slices.DeleteFunc(neighbours, func(x string) bool { return x == p })
				for _, l := range lazy {
					delete(l, p)
				}
			default:
				r, p, makeLazy := root(), peer(), rng.IntN(2) == 0
				if makeLazy {
					s.get(r).makeLazy(p)
				} else {
					s.get(r).makeEager(p)
				}
				if lazy[r] == nil {
					lazy[r] = map[string]bool{}
				}
				if slices.Contains(neighbours, p) {
					if makeLazy {
						lazy[r][p] = true
					} else {
						delete(lazy[r], p)
					}
				}
			}
			for r, l := range lazy {
				var got, want []string
				for p, isLazy := range s.get(r).links() {
					got = append(got, fmt.Sprintf("%s:%v", p, isLazy))
				}
				sorted := slices.Sorted(slices.Values(neighbours))
				for _, p := range sorted {
					want = append(want, fmt.Sprintf("%s:%v", p, l[p]))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d root %s:\n got %v\nwant %v", seed, step, r, got, want)
				}
			}
		}
	}
}
