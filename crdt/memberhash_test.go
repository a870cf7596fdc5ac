package crdt

import (
	"fmt"
	"testing"
)

// The index key tells apart what a careless concatenation would not (the
// boundary between node and id, lengths that are multiples of eight, a
// zero byte), and spreads the names of a burst: a collision turns the
// group back to scans.
func TestMemberHashTellsKeysApart(t *testing.T) {
	pairs := [][2]string{
		{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"},
		{"node0001", "member01"}, {"node0001member01", ""}, {"", "node0001member01"},
		{"a", "b\x00"}, {"a", "b"}, {"a\x00", "b"},
	}
	seen := map[uint64][2]string{}
	for _, p := range pairs {
		h := memberHash(p[0], p[1])
		if prev, ok := seen[h]; ok {
			t.Fatalf("%q and %q have one key", prev, p)
		}
		seen[h] = p
	}
	for n := range 20 {
		for i := range 20_000 {
			p := [2]string{fmt.Sprintf("node-%05d", n), fmt.Sprintf("m%d", i)}
			h := memberHash(p[0], p[1])
			if prev, ok := seen[h]; ok {
				t.Fatalf("%q and %q have one key", prev, p)
			}
			seen[h] = p
		}
	}
}
