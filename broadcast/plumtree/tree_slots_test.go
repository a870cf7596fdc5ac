package plumtree

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// A lost neighbour's slot is reused by the next one, which must not
// inherit the lazy links of the peer that held the slot before: in a tree
// left all-eager it starts eager, as every link of such a tree.
func TestNewNeighbourDoesNotInheritItsSlotsLinks(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a"})
	p.NeighborUp("b")
	p.NeighborUp("c")
	for _, root := range []string{"r1", "r2"} {
		require.NoError(t, p.Step("b", Message{Type: MsgPrune, Root: root}))
	}
	eager, lazy := p.Peers("r1")
	require.Equal(t, []string{"c"}, eager)
	require.Equal(t, []string{"b"}, lazy)

	p.NeighborDown("b")
	p.NeighborUp("d") // takes b's slot
	p.NeighborUp("b")
	for _, root := range []string{"r1", "r2"} {
		eager, lazy := p.Peers(root)
		require.Equal(t, []string{"b", "c", "d"}, eager, root)
		require.Empty(t, lazy, root)
	}
}

// Trees hold any number of neighbours, not only a word's worth.
func TestTreesHoldManyNeighbours(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a"})
	var names []string
	for i := range 130 {
		names = append(names, fmt.Sprintf("p%03d", i))
		p.NeighborUp(names[i])
	}
	require.NoError(t, p.Step("p000", Message{Type: MsgPrune, Root: "r"}))
	require.NoError(t, p.Step("p129", Message{Type: MsgPrune, Root: "r"}))
	p.NeighborUp("p200") // past 128 slots: every mask widens
	require.NoError(t, p.Step("p200", Message{Type: MsgPrune, Root: "r"}))
	require.NoError(t, p.Step("p070", Message{Type: MsgPrune, Root: "s"}))

	eager, lazy := p.Peers("r")
	require.Equal(t, []string{"p000", "p129", "p200"}, lazy)
	require.Len(t, eager, 128)
	_, lazy = p.Peers("s")
	require.Equal(t, []string{"p070"}, lazy)

	p.NeighborDown("p129")
	_, lazy = p.Peers("r")
	require.Equal(t, []string{"p000", "p200"}, lazy)
}

// Beyond MaxTrees, the tree a clock finds unused is evicted: one used since
// the hand last passed survives.
func TestEvictionSparesTreesInUse(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a", MaxTrees: 3})
	p.NeighborUp("b")
	prune := func(root string) { require.NoError(t, p.Step("b", Message{Type: MsgPrune, Root: root})) }
	prune("r1")
	prune("r2")
	prune("r3")
	prune("r4") // the hand clears every mark and evicts r1
	require.Equal(t, []string{"r2", "r3", "r4"}, p.Roots())
	prune("r2") // in use again
	prune("r5") // r2 is spared, r3 goes
	require.Equal(t, []string{"r2", "r4", "r5"}, p.Roots())
}

// A new neighbour is lazy in the trees already pruned (they span the
// overlay; it joins them through the optimisation or a graft) and eager in
// the trees still all-eager.
func TestNewNeighbourIsLazyInPrunedTrees(t *testing.T) {
	p, _ := newCore(t, Config{Self: "a"})
	p.NeighborUp("b")
	p.NeighborUp("c")
	require.NoError(t, p.Step("b", Message{Type: MsgPrune, Root: "pruned"}))
	require.NoError(t, p.Step("b", Message{Type: MsgGraft, Root: "eager"}))
	p.NeighborUp("d")
	eager, lazy := p.Peers("pruned")
	require.Equal(t, []string{"c"}, eager)
	require.Equal(t, []string{"b", "d"}, lazy)
	eager, lazy = p.Peers("eager")
	require.Equal(t, []string{"b", "c", "d"}, eager)
	require.Empty(t, lazy)
	eager, _ = p.Peers("unknown")
	require.Equal(t, []string{"b", "c", "d"}, eager, "a root without a tree starts all-eager")
}
