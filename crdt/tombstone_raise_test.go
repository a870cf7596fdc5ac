package crdt

import "testing"

// A replica whose failure detector ruled an owner dead holds its tombstone
// and refuses the owner's entries; a peer's higher tombstone for that owner
// still raises its own, or the two digests would differ until collection.
func TestMergedTombstoneRaisesOneHeldForAnOwnerNotAlive(t *testing.T) {
	s := New(Config{Self: "a", Incarnation: 1, Alive: func(o string) bool { return o != "x" }})
	s.Tombstone("x", 1, 0)
	if !s.MergeTombstone("x", 2, 0) {
		t.Fatal("the peer's higher tombstone was refused")
	}
	if inc, _ := s.Tombstoned("x"); inc != 2 {
		t.Fatalf("tombstone of x at %d, want 2", inc)
	}
	if s.MergeTombstone("y", 1, 0) != true {
		t.Fatal("a tombstone for an owner the failure detector lists alive was refused")
	}
}
