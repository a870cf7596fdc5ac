package registry

import (
	"slices"

	radix "github.com/armon/go-radix"
)

// patternIndex holds the stored pattern keys of a scope and finds the most
// specific one matching a concrete name. Concrete names live beside it in a
// plain map: an exact name beats every pattern, so they never need ranking.
//
// Patterns are indexed in a radix tree under their literal prefix (the part
// before the first wildcard), so WalkPath on a name visits exactly the
// prefixes that can match it, shortest first. A key with a longer literal
// prefix always wins over one with a shorter prefix when both match (at the
// shorter one's first wildcard, the longer one still has a literal), so the
// deepest prefix with a match decides and shallower ones are never ranked.
// Within a prefix, patterns are grouped by literal suffix (the part after
// the last wildcard), which a matching name must end with: a lookup probes
// one map entry per distinct suffix length instead of scanning every
// pattern under a short prefix like "/".
//
// The zero value is empty and ready to use. Writes need exclusive access;
// get, len and best only read, so they may run concurrently with each other.
type patternIndex[V any] struct {
	prefixes *radix.Tree // literal prefix -> *patternBucket[V]
	entries  map[string]*patternEntry[V]
}

type patternEntry[V any] struct {
	key   string
	value V
}

// patternBucket holds the patterns that share one literal prefix.
type patternBucket[V any] struct {
	prefixLen int
	bySuffix  map[string][]*patternEntry[V]
	// suffixLens lists the distinct suffix lengths present, ascending, with
	// how many patterns have each.
	suffixLens []suffixLenCount
}

type suffixLenCount struct {
	length, count int
}

// bucketSuffix is the suffix a key is grouped under. A concrete key (not
// meant to be stored here, but handled correctly) is all prefix.
func bucketSuffix(key string) string {
	if !isPattern(key) {
		return ""
	}
	return literalSuffix(key)
}

// insert stores key with value v, replacing the value if key is stored.
// Keys are expected to have passed validateGroupName.
func (x *patternIndex[V]) insert(key string, v V) {
	if e, ok := x.entries[key]; ok {
		e.value = v
		return
	}
	if x.prefixes == nil {
		x.prefixes = radix.New()
		x.entries = make(map[string]*patternEntry[V])
	}
	e := &patternEntry[V]{key: key, value: v}
	x.entries[key] = e

	prefix := literalPrefix(key)
	var b *patternBucket[V]
	if raw, ok := x.prefixes.Get(prefix); ok {
		b = raw.(*patternBucket[V])
	} else {
		b = &patternBucket[V]{prefixLen: len(prefix), bySuffix: make(map[string][]*patternEntry[V])}
		x.prefixes.Insert(prefix, b)
	}
	suffix := bucketSuffix(key)
	b.bySuffix[suffix] = append(b.bySuffix[suffix], e)
	i, found := slices.BinarySearchFunc(b.suffixLens, len(suffix), func(c suffixLenCount, n int) int { return c.length - n })
	if found {
		b.suffixLens[i].count++
	} else {
		b.suffixLens = slices.Insert(b.suffixLens, i, suffixLenCount{length: len(suffix), count: 1})
	}
}

// remove deletes key and reports whether it was stored.
func (x *patternIndex[V]) remove(key string) bool {
	e, ok := x.entries[key]
	if !ok {
		return false
	}
	delete(x.entries, key)

	prefix := literalPrefix(key)
	raw, _ := x.prefixes.Get(prefix)
	b := raw.(*patternBucket[V])
	suffix := bucketSuffix(key)
	list := b.bySuffix[suffix]
	i := slices.Index(list, e)
	list[i] = list[len(list)-1]
	list[len(list)-1] = nil
	if list = list[:len(list)-1]; len(list) == 0 {
		delete(b.bySuffix, suffix)
	} else {
		b.bySuffix[suffix] = list
	}
	j, _ := slices.BinarySearchFunc(b.suffixLens, len(suffix), func(c suffixLenCount, n int) int { return c.length - n })
	if b.suffixLens[j].count--; b.suffixLens[j].count == 0 {
		b.suffixLens = slices.Delete(b.suffixLens, j, j+1)
	}
	if len(b.bySuffix) == 0 {
		x.prefixes.Delete(prefix)
	}
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

// deepBuckets is how many prefixes along a name's path best keeps on the
// stack to rank deepest first; longer paths take a second walk.
const deepBuckets = 16

// best returns the most specific stored key matching the concrete name.
// It allocates nothing.
func (x *patternIndex[V]) best(name string) (key string, v V, ok bool) {
	if x.prefixes == nil {
		return "", v, false
	}
	// Keep the deepest prefixes on the path in a ring, then rank them from
	// the deepest: the first one holding a match holds the answer.
	var ring [deepBuckets]*patternBucket[V]
	visited := 0
	x.prefixes.WalkPath(name, func(_ string, raw any) bool {
		ring[visited%deepBuckets] = raw.(*patternBucket[V])
		visited++
		return false
	})
	kept := min(visited, deepBuckets)
	for i := 1; i <= kept; i++ {
		if e := ring[(visited-i)%deepBuckets].best(name); e != nil {
			return e.key, e.value, true
		}
	}
	if visited <= deepBuckets {
		return "", v, false
	}
	// None of the deepest prefixes matched: rank the shallower ones, where
	// again the deepest match wins.
	var found *patternEntry[V]
	seen := 0
	x.prefixes.WalkPath(name, func(_ string, raw any) bool {
		if seen++; seen > visited-deepBuckets {
			return true
		}
		if e := raw.(*patternBucket[V]).best(name); e != nil {
			found = e
		}
		return false
	})
	if found == nil {
		return "", v, false
	}
	return found.key, found.value, true
}

// best returns the most specific pattern of the bucket matching name, or nil.
func (b *patternBucket[V]) best(name string) *patternEntry[V] {
	var found *patternEntry[V]
	room := len(name) - b.prefixLen
	for _, sl := range b.suffixLens {
		if sl.length > room {
			break
		}
		for _, e := range b.bySuffix[name[len(name)-sl.length:]] {
			if matchKey(e.key, name) && (found == nil || moreSpecific(e.key, found.key, name)) {
				found = e
			}
		}
	}
	return found
}
