package registry

import (
	"sync"
)

// scopeIndex finds the stored group a lookup names. Concrete group names
// live in a groupMap, whose reads take no lock, so exact lookups from many
// goroutines do not contend; patterns live in the radix index behind a
// read-write lock. Writers change both only while holding Node.mu.
type scopeIndex struct {
	name     string
	exact    groupMap
	patMu    sync.RWMutex
	patterns patternIndex[*groupView]
	// journal holds the scope's recent changes for its watches; nil until
	// the scope is first watched. Guarded by Node.mu.
	journal *journal
}

func newScopeIndex(name string) *scopeIndex {
	return &scopeIndex{name: name}
}

// lookup returns the view of the most specific stored group matching the
// concrete name: the exact group if stored, else the best pattern.
func (x *scopeIndex) lookup(name string) *groupView {
	if v := x.exact.load(name); v != nil {
		return v
	}
	x.patMu.RLock()
	_, v, ok := x.patterns.best(name)
	x.patMu.RUnlock()
	if !ok {
		return nil
	}
	return v
}

// stored returns the view of the group stored under exactly key (a
// concrete name or a pattern). Callers hold Node.mu.
func (x *scopeIndex) stored(key string) *groupView {
	if !isPattern(key) {
		return x.exact.load(key)
	}
	v, _ := x.patterns.get(key)
	return v
}

// add and remove are called with Node.mu held.
func (x *scopeIndex) add(v *groupView) {
	if !isPattern(v.name) {
		x.exact.store(v)
		return
	}
	x.patMu.Lock()
	x.patterns.insert(v.name, v)
	x.patMu.Unlock()
}

func (x *scopeIndex) remove(key string) {
	if !isPattern(key) {
		x.exact.remove(key)
		return
	}
	x.patMu.Lock()
	x.patterns.remove(key)
	x.patMu.Unlock()
}
