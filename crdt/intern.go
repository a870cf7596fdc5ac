package crdt

import "strings"

// Interner hands out one copy of each string it is given: replicas that
// share one as Config.Intern (many replicas in one process, as in the
// simulator) hold each owner name, scope, group name and member ID once
// between them, instead of once each (a name decoded from the wire is a
// fresh copy on every replica). It never forgets a string, so it suits a
// bounded population of names. It is not safe for concurrent use: share
// it only between replicas that one goroutine drives.
type Interner struct {
	strings map[string]string
}

// NewInterner returns an empty interner.
func NewInterner() *Interner { return &Interner{strings: make(map[string]string)} }

// Intern returns the interner's copy of str.
func (in *Interner) Intern(str string) string {
	if c, ok := in.strings[str]; ok {
		return c
	}
	// A clone, so that a substring does not pin the buffer it came from.
	c := strings.Clone(str)
	in.strings[c] = c
	return c
}

// Len is the number of distinct strings held.
func (in *Interner) Len() int { return len(in.strings) }
