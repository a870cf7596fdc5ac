package plumtree

import (
	"iter"
	"slices"
)

// treeSet holds this node's links in the broadcast tree of every root it
// has seen, up to Config.MaxTrees roots.
//
// Every node of a registry broadcasts, so every node is a root and a node
// keeps one tree per node of the cluster. A tree therefore costs as little
// as it can: each neighbour holds one slot (a bit position) for as long as
// it is a neighbour, every link starts eager (the paper's initial state),
// and a tree is the bitmask of the slots that are lazy: one word with
// HyParView's active view of 5. A root costs its name, an index entry and
// that word.
type treeSet struct {
	max int

	// The neighbours, sorted by name so that a tree lists its peers (and
	// the protocol sends to them) in a fixed order; slots[i] is the slot of
	// peers[i]. A slot is free again once its neighbour is gone, and its bit
	// is then clear in every tree.
	peers []string
	slots []int
	words int // mask words per tree: enough for the highest slot in use

	index map[string]int // root name -> position in roots
	roots []rootEntry    // also the ring that eviction sweeps
	masks []uint64       // the lazy slots of roots[i]: masks[i*words:(i+1)*words]
	hand  int            // the eviction clock's hand

	// inherited is the mask of the last tree evicted, and the starting point
	// of every tree made after an eviction. A root that comes back after its
	// tree was evicted, or a new one when the set is full, would otherwise
	// start all-eager and flood the overlay again: it starts instead from
	// the links another root's broadcasts pruned, which already form a tree
	// spanning the overlay, and prunes and optimises them for itself.
	inherited []uint64
}

type rootEntry struct {
	name string
	used bool // set on every use, cleared as the clock's hand passes
}

func newTreeSet(maxTrees int) *treeSet {
	return &treeSet{max: maxTrees, words: 1, index: map[string]int{}}
}

// len returns the number of trees kept.
func (s *treeSet) len() int { return len(s.roots) }

// tree is this node's links in the tree of one root: payloads go to eager
// peers, announcements to lazy ones. It is a handle into the treeSet, valid
// until a tree of another root is made (which may evict this one); the
// protocol takes a fresh one for every message it handles.
type tree struct {
	set *treeSet
	at  int
}

// tree returns the tree of root, making it if needed: all-eager (the
// paper's initial state), or after an eviction from the evicted tree's
// links. Beyond Config.MaxTrees the tree least recently used, as a clock
// approximates it in O(1) amortised time, is evicted.
func (p *Protocol) tree(root string) tree { return p.trees.get(root) }

func (s *treeSet) get(root string) tree {
	if i, ok := s.index[root]; ok {
		s.roots[i].used = true
		return tree{s, i}
	}
	if len(s.roots) < s.max {
		i := len(s.roots)
		s.roots = append(s.roots, rootEntry{name: root, used: true})
		s.masks = append(s.masks, make([]uint64, s.words)...)
		copy(s.mask(i), s.inherited)
		s.index[root] = i
		return tree{s, i}
	}
	i := s.evict()
	s.roots[i] = rootEntry{name: root, used: true}
	s.index[root] = i
	return tree{s, i}
}

// evict frees the position of the tree the clock's hand finds unused first
// (clearing the marks it passes), keeps its links as the inherited ones,
// and returns the position.
func (s *treeSet) evict() int {
	for s.roots[s.hand].used {
		s.roots[s.hand].used = false
		s.hand = (s.hand + 1) % len(s.roots)
	}
	i := s.hand
	s.hand = (s.hand + 1) % len(s.roots)
	delete(s.index, s.roots[i].name)
	s.inherited = append(s.inherited[:0], s.mask(i)...)
	return i
}

func (s *treeSet) mask(i int) []uint64 { return s.masks[i*s.words : (i+1)*s.words] }

// slotOf returns the slot of a neighbour, or false for any other peer.
func (s *treeSet) slotOf(peer string) (int, bool) {
	i, ok := slices.BinarySearch(s.peers, peer)
	if !ok {
		return 0, false
	}
	return s.slots[i], true
}

// neighborUp gives peer the lowest free slot. The paper makes a new link
// eager in every tree; here it is eager only in the trees that are still
// all-eager (not yet pruned), and lazy in the others. A tree that has
// been pruned spans the overlay already, and a new eager link in it races
// the tree's copies: when a copy through it comes first, the whole subtree
// below takes that detour for the broadcast (at 10,000 nodes, one new link
// took a broadcast from 9 hops, the overlay's depth, to 21). As a lazy link
// it announces instead, and the optimisation adopts it if it is shorter; a
// node that lost its parent grafts it, or another announcer, as always.
func (s *treeSet) neighborUp(peer string) {
	i, ok := slices.BinarySearch(s.peers, peer)
	if ok {
		return
	}
	used := slices.Clone(s.slots)
	slices.Sort(used)
	slot := 0
	for _, u := range used {
		if u != slot {
			break
		}
		slot++
	}
	if slot >= s.words*64 {
		s.widen()
	}
	s.peers = slices.Insert(s.peers, i, peer)
	s.slots = slices.Insert(s.slots, i, slot)
	word, bit := slot/64, uint64(1)<<(slot%64)
	for t := range s.roots {
		if m := s.mask(t); slices.ContainsFunc(m, func(w uint64) bool { return w != 0 }) {
			m[word] |= bit
		}
	}
	if slices.ContainsFunc(s.inherited, func(w uint64) bool { return w != 0 }) {
		s.inherited[word] |= bit
	}
}

// widen adds a word to every mask, for a slot beyond the current width.
func (s *treeSet) widen() {
	words := s.words + 1
	masks := make([]uint64, len(s.roots)*words)
	for i := range s.roots {
		copy(masks[i*words:], s.mask(i))
	}
	s.masks, s.words = masks, words
	if len(s.inherited) > 0 {
		s.inherited = append(s.inherited, 0)
	}
}

// neighborDown frees peer's slot and clears its bit in every tree, so the
// slot is clean for the next neighbour.
func (s *treeSet) neighborDown(peer string) {
	i, ok := slices.BinarySearch(s.peers, peer)
	if !ok {
		return
	}
	slot := s.slots[i]
	s.peers = slices.Delete(s.peers, i, i+1)
	s.slots = slices.Delete(s.slots, i, i+1)
	word, bit := slot/64, uint64(1)<<(slot%64)
	for j := word; j < len(s.masks); j += s.words {
		s.masks[j] &^= bit
	}
	if word < len(s.inherited) {
		s.inherited[word] &^= bit
	}
}

// setLazy makes the link to peer lazy or eager in this tree; a peer that
// is not a neighbour is in no tree and is ignored.
func (t tree) setLazy(peer string, lazy bool) {
	slot, ok := t.set.slotOf(peer)
	if !ok {
		return
	}
	m := t.set.mask(t.at)
	if lazy {
		m[slot/64] |= 1 << (slot % 64)
	} else {
		m[slot/64] &^= 1 << (slot % 64)
	}
}

func (t tree) makeEager(peer string) { t.setLazy(peer, false) }

func (t tree) makeLazy(peer string) { t.setLazy(peer, true) }

// links yields every neighbour in name order with whether its link is lazy
// in this tree.
func (t tree) links() iter.Seq2[string, bool] {
	return func(yield func(string, bool) bool) {
		m := t.set.mask(t.at)
		for i, peer := range t.set.peers {
			slot := t.set.slots[i]
			if !yield(peer, m[slot/64]&(1<<(slot%64)) != 0) {
				return
			}
		}
	}
}

// Peers returns this node's eager and lazy peers in the tree of root, as
// partisan's debug_get_peers, each sorted. A root without a tree here
// reports the links its tree would start with, without making it.
func (p *Protocol) Peers(root string) (eager, lazy []string) {
	s := p.trees
	mask := s.inherited
	if i, ok := s.index[root]; ok {
		mask = s.mask(i)
	}
	for i, peer := range s.peers {
		slot := s.slots[i]
		if slot/64 < len(mask) && mask[slot/64]&(1<<(slot%64)) != 0 {
			lazy = append(lazy, peer)
		} else {
			eager = append(eager, peer)
		}
	}
	return eager, lazy
}

// Roots returns the roots whose trees this node keeps, sorted.
func (p *Protocol) Roots() []string {
	roots := make([]string, 0, len(p.trees.roots))
	for _, r := range p.trees.roots {
		roots = append(roots, r.name)
	}
	slices.Sort(roots)
	return roots
}
