package plumtree

import "slices"

// tree is this node's links in the broadcast tree of one root: payloads go
// to eager peers, announcements to lazy ones. Both are sorted, disjoint, and
// subsets of the neighbours.
type tree struct {
	eager, lazy []string
	used        int64
}

// tree returns the links for root, creating them all-eager from the current
// neighbours (the paper's initial state) on first use. The least recently
// used tree is forgotten beyond Config.MaxTrees.
func (p *Protocol) tree(root string) *tree {
	t := p.trees[root]
	if t == nil {
		if len(p.trees) >= p.cfg.MaxTrees {
			p.evictTree()
		}
		t = &tree{eager: slices.Clone(p.neighbors)}
		p.trees[root] = t
	}
	t.used = p.now
	return t
}

func (p *Protocol) evictTree() {
	var victim string
	var oldest int64
	first := true
	for root, t := range p.trees {
		if first || t.used < oldest || (t.used == oldest && root < victim) {
			victim, oldest, first = root, t.used, false
		}
	}
	delete(p.trees, victim)
}

func (t *tree) makeEager(peer string) {
	t.lazy = removeSorted(t.lazy, peer)
	t.eager = insertSorted(t.eager, peer)
}

func (t *tree) makeLazy(peer string) {
	t.eager = removeSorted(t.eager, peer)
	t.lazy = insertSorted(t.lazy, peer)
}

func (t *tree) remove(peer string) {
	t.eager = removeSorted(t.eager, peer)
	t.lazy = removeSorted(t.lazy, peer)
}

func insertSorted(s []string, v string) []string {
	i, ok := slices.BinarySearch(s, v)
	if ok {
		return s
	}
	return slices.Insert(s, i, v)
}

func removeSorted(s []string, v string) []string {
	i, ok := slices.BinarySearch(s, v)
	if !ok {
		return s
	}
	return slices.Delete(s, i, i+1)
}

// Peers returns this node's eager and lazy peers in the tree of root, as
// partisan's debug_get_peers. A root never used yet reports the initial
// state (every neighbour eager) without creating it.
func (p *Protocol) Peers(root string) (eager, lazy []string) {
	if t := p.trees[root]; t != nil {
		return slices.Clone(t.eager), slices.Clone(t.lazy)
	}
	return slices.Clone(p.neighbors), nil
}

// Roots returns the roots whose trees this node keeps, sorted.
func (p *Protocol) Roots() []string {
	roots := make([]string, 0, len(p.trees))
	for r := range p.trees {
		roots = append(roots, r)
	}
	slices.Sort(roots)
	return roots
}
