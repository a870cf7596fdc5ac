package registry

import (
	"slices"
	"unicode/utf8"

	radix "github.com/armon/go-radix"
)

// patternIndex holds the stored pattern keys of a scope and finds the most
// specific one matching a concrete name, without scanning the patterns.
// Concrete names live beside it in a plain map: an exact name beats every
// pattern, so they never need ranking.
//
// The index follows the definition of a key's signature. Keys are grouped
// in a radix tree under their literal prefix (the part before the first
// wildcard), so WalkPath on a name visits exactly the prefixes that can
// match it, shortest first. A key with a longer literal prefix beats one
// with a shorter prefix when both match (at the shorter one's first
// wildcard, the longer one still has a literal), so the deepest prefix
// holding a match decides. Within a prefix, the next step is a wildcard:
//
//   - "?" beats "*", and a "?C" takes everything up to the first C, so its
//     length is known from the name: each stop character C has its own
//     nested index of what follows, searched where the "?" stops; the
//     shortest "?" holding a match wins.
//   - "*" followed by more key takes the fewest characters that let the
//     rest align, so the nested index of what follows is searched at every
//     later start, nearest first, and the first start holding a match wins.
//   - a trailing "*" takes the whole rest of the name, the longest star of
//     all, so it is the last resort.
//
// A lookup thus costs a few radix walks per wildcard of the winning key
// and per candidate start, whatever the number of stored keys. Ties are
// impossible: two different keys matching one name differ in some step.
// Stars nested in stars would retry the same (node, start) pairs once per
// way of reaching them, exponentially in the number of stars; a per-lookup
// memo of the starts already known to fail keeps it polynomial (see
// starMemo).
//
// The zero value is empty and ready to use. Writes need exclusive access;
// get, len and best only read, so they may run concurrently with each other.
type patternIndex[V any] struct {
	root    patternNode[V]
	entries map[string]*patternEntry[V]
}

type patternEntry[V any] struct {
	key   string
	value V
}

// patternNode indexes keys relative to some position of the name: the whole
// keys at the root, what follows a wildcard in nested nodes.
type patternNode[V any] struct {
	// A node holding a single key keeps it inline and matches it directly:
	// most wildcards in practice have one continuation (the "/db" of
	// "/svc/7/?/db"), and a radix tree for it would add a chain of pointer
	// chases, each a likely cache miss, to every lookup.
	only     *patternEntry[V]
	onlyRel  string
	prefixes *radix.Tree // literal prefix -> *patternBucket[V]
	size     int
}

// patternBucket holds the keys of a node that share one literal prefix.
type patternBucket[V any] struct {
	prefixLen int
	exact     *patternEntry[V] // the key that is the prefix alone
	endStar   *patternEntry[V] // prefix + "*"
	questions []questionBranch[V]
	// star indexes what follows prefix + "*" when more key follows;
	// starFirst lists the first bytes of those continuations.
	star      *patternNode[V]
	starFirst []firstByteCount
}

// questionBranch indexes what follows prefix + "?" for one stop character;
// every key in it starts with that character.
type questionBranch[V any] struct {
	stop string // the stop character, UTF-8 encoded
	rest patternNode[V]
}

type firstByteCount struct {
	b     byte
	count int
}

// insert stores key with value v, replacing the value if key is stored.
// Keys are expected to have passed validateGroupName.
func (x *patternIndex[V]) insert(key string, v V) {
	if e, ok := x.entries[key]; ok {
		e.value = v
		return
	}
	if x.entries == nil {
		x.entries = make(map[string]*patternEntry[V])
	}
	e := &patternEntry[V]{key: key, value: v}
	x.entries[key] = e
	x.root.insert(key, e)
}

// remove deletes key and reports whether it was stored.
func (x *patternIndex[V]) remove(key string) bool {
	if _, ok := x.entries[key]; !ok {
		return false
	}
	delete(x.entries, key)
	x.root.remove(key)
	return true
}

// get returns the value stored under key.
func (x *patternIndex[V]) get(key string) (V, bool) {
	if e, ok := x.entries[key]; ok {
		return e.value, true
	}
	var zero V
	return zero, false
}

// len returns how many keys are stored.
func (x *patternIndex[V]) len() int {
	return len(x.entries)
}

// best returns the most specific stored key matching the concrete name.
// It allocates nothing.
func (x *patternIndex[V]) best(name string) (key string, v V, ok bool) {
	var memo starMemo[V]
	if e := x.root.best(name, &memo); e != nil {
		return e.key, e.value, true
	}
	return "", v, false
}

// insert stores e under rel, the part of e.key this node indexes.
func (n *patternNode[V]) insert(rel string, e *patternEntry[V]) {
	if n.size == 0 {
		n.only, n.onlyRel, n.size = e, rel, 1
		return
	}
	if n.only != nil {
		only, onlyRel := n.only, n.onlyRel
		n.only, n.onlyRel, n.size = nil, "", 0
		n.insertIndexed(onlyRel, only)
	}
	n.insertIndexed(rel, e)
}

func (n *patternNode[V]) insertIndexed(rel string, e *patternEntry[V]) {
	if n.prefixes == nil {
		n.prefixes = radix.New()
	}
	n.size++
	prefix := literalPrefix(rel)
	var b *patternBucket[V]
	if raw, ok := n.prefixes.Get(prefix); ok {
		b = raw.(*patternBucket[V])
	} else {
		b = &patternBucket[V]{prefixLen: len(prefix)}
		n.prefixes.Insert(prefix, b)
	}
	rest := rel[len(prefix):]
	switch {
	case rest == "":
		b.exact = e
	case rest == "*":
		b.endStar = e
	case rest[0] == wildcardStar:
		if b.star == nil {
			b.star = &patternNode[V]{}
		}
		b.star.insert(rest[1:], e)
		i := slices.IndexFunc(b.starFirst, func(c firstByteCount) bool { return c.b == rest[1] })
		if i < 0 {
			b.starFirst = append(b.starFirst, firstByteCount{b: rest[1], count: 1})
		} else {
			b.starFirst[i].count++
		}
	default: // "?" followed by its stop character
		_, size := utf8.DecodeRuneInString(rest[1:])
		stop := rest[1 : 1+size]
		i := slices.IndexFunc(b.questions, func(q questionBranch[V]) bool { return q.stop == stop })
		if i < 0 {
			b.questions = append(b.questions, questionBranch[V]{stop: stop})
			i = len(b.questions) - 1
		}
		b.questions[i].rest.insert(rest[1:], e)
	}
}

// remove deletes the stored key whose indexed part is rel.
func (n *patternNode[V]) remove(rel string) {
	if n.only != nil {
		n.only, n.onlyRel, n.size = nil, "", 0
		return
	}
	n.size--
	prefix := literalPrefix(rel)
	raw, _ := n.prefixes.Get(prefix)
	b := raw.(*patternBucket[V])
	rest := rel[len(prefix):]
	switch {
	case rest == "":
		b.exact = nil
	case rest == "*":
		b.endStar = nil
	case rest[0] == wildcardStar:
		b.star.remove(rest[1:])
		i := slices.IndexFunc(b.starFirst, func(c firstByteCount) bool { return c.b == rest[1] })
		if b.starFirst[i].count--; b.starFirst[i].count == 0 {
			b.starFirst = slices.Delete(b.starFirst, i, i+1)
		}
		if b.star.size == 0 {
			b.star = nil
		}
	default:
		_, size := utf8.DecodeRuneInString(rest[1:])
		stop := rest[1 : 1+size]
		i := slices.IndexFunc(b.questions, func(q questionBranch[V]) bool { return q.stop == stop })
		b.questions[i].rest.remove(rest[1:])
		if b.questions[i].rest.size == 0 {
			b.questions = slices.Delete(b.questions, i, i+1)
		}
	}
	if b.exact == nil && b.endStar == nil && b.star == nil && len(b.questions) == 0 {
		n.prefixes.Delete(prefix)
	}
	if n.size == 0 {
		n.prefixes = nil // the next key goes inline again
	}
}

// deepBuckets is how many prefixes along a name's path best keeps on the
// stack to rank deepest first; longer paths take a second walk.
const deepBuckets = 16

// best returns the most specific key of the node matching name, or nil.
func (n *patternNode[V]) best(name string, memo *starMemo[V]) *patternEntry[V] {
	if n.only != nil {
		if matchKey(n.onlyRel, name) {
			return n.only
		}
		return nil
	}
	if n.prefixes == nil {
		return nil
	}
	// Keep the deepest prefixes on the path in a ring, then rank them from
	// the deepest: the first one holding a match holds the answer.
	var ring [deepBuckets]*patternBucket[V]
	visited := 0
	n.prefixes.WalkPath(name, func(_ string, raw any) bool {
		ring[visited%deepBuckets] = raw.(*patternBucket[V])
		visited++
		return false
	})
	for i := 1; i <= min(visited, deepBuckets); i++ {
		if e := ring[(visited-i)%deepBuckets].best(name, memo); e != nil {
			return e
		}
	}
	if visited <= deepBuckets {
		return nil
	}
	// None of the deepest prefixes matched: rank the shallower ones, where
	// again the deepest match wins.
	var found *patternEntry[V]
	seen := 0
	n.prefixes.WalkPath(name, func(_ string, raw any) bool {
		if seen++; seen > visited-deepBuckets {
			return true
		}
		if e := raw.(*patternBucket[V]).best(name, memo); e != nil {
			found = e
		}
		return false
	})
	return found
}

// best returns the most specific key of the bucket matching name, which
// starts with the bucket's prefix, or nil.
func (b *patternBucket[V]) best(name string, memo *starMemo[V]) *patternEntry[V] {
	rest := name[b.prefixLen:]
	if rest == "" {
		return b.exact
	}
	// "?" beats "*"; among "?", the shortest wins.
	var found *patternEntry[V]
	foundLen := 0
	for i := range b.questions {
		q := &b.questions[i]
		n, ok := questionLength(q.stop, rest)
		if !ok || (found != nil && n >= foundLen) {
			continue
		}
		if e := q.rest.best(rest[n:], memo); e != nil {
			found, foundLen = e, n
		}
	}
	if found != nil {
		return found
	}
	// Among "*", the shortest wins: try the starts of what follows from the
	// nearest, then the trailing star, which takes everything.
	if b.star != nil {
		// Every name handed to a nested node is a suffix of the looked-up
		// name, so its length identifies the start.
		failed := memo.failedUpTo(b.star)
		for start := 1; start < len(rest) && len(rest)-start > failed; start++ {
			if !b.starFollowedBy(rest[start]) {
				continue
			}
			if e := b.star.best(rest[start:], memo); e != nil {
				return e
			}
		}
		memo.setFailedUpTo(b.star, max(failed, len(rest)-1))
	}
	return b.endStar
}

func (b *patternBucket[V]) starFollowedBy(c byte) bool {
	for _, f := range b.starFirst {
		if f.b == c {
			return true
		}
	}
	return false
}

// starMemo records, for one lookup, the nested star nodes known to hold no
// match for any suffix of the name up to some length: whether a node
// matches a suffix depends on nothing else, and a star's loop tries the
// suffixes from the longest down. A lookup touching few star nodes keeps
// the memo on the stack; more spill into a map.
type starMemo[V any] struct {
	small [8]starMemoEntry[V]
	used  int
	spill map[*patternNode[V]]int
}

type starMemoEntry[V any] struct {
	node     *patternNode[V]
	failedTo int
}

// failedUpTo returns the length up to which every suffix is known to hold
// no match in node (0 if none is known).
func (m *starMemo[V]) failedUpTo(node *patternNode[V]) int {
	for i := range m.used {
		if m.small[i].node == node {
			return m.small[i].failedTo
		}
	}
	return m.spill[node]
}

func (m *starMemo[V]) setFailedUpTo(node *patternNode[V], length int) {
	for i := range m.used {
		if m.small[i].node == node {
			m.small[i].failedTo = length
			return
		}
	}
	if m.used < len(m.small) {
		m.small[m.used] = starMemoEntry[V]{node: node, failedTo: length}
		m.used++
		return
	}
	if m.spill == nil {
		m.spill = make(map[*patternNode[V]]int)
	}
	m.spill[node] = length
}
