package crdt

import (
	"testing"
	"unsafe"
)

// Holds is the question a receiver asks before decoding a batch: true
// only where Apply would call every op of the owner up to that version a
// duplicate.
func TestHoldsAnswersAsApplyWould(t *testing.T) {
	gone := map[string]bool{}
	s := New(Config{Self: "self", Incarnation: 5, Alive: func(o string) bool { return !gone[o] }})
	owner := New(Config{Self: "o", Incarnation: 3})
	var ops []Op
	for i := range 4 {
		ops = append(ops, owner.LocalJoin("s", "g", string(rune('a'+i)), 1, nil, int64(i)))
	}
	for i := range 3 {
		s.Apply(&ops[i])
	}
	s.LocalJoin("s", "g", "mine", 1, nil, 1)
	for _, tc := range []struct {
		owner string
		v     Version
		want  bool
	}{
		{"o", Version{3, 1}, true},
		{"o", Version{3, 3}, true},
		{"o", Version{3, 4}, false}, // not yet applied
		{"o", Version{2, 1}, false}, // an older incarnation: Apply refuses it
		{"o", Version{4, 1}, false}, // a newer incarnation: Apply applies it
		{"unknown", Version{1, 1}, false},
		{"self", Version{5, 1}, true},
		{"self", Version{5, 2}, false}, // a claim about this node: a refute
	} {
		if got := s.Holds(tc.owner, tc.v); got != tc.want {
			t.Errorf("Holds(%s, %v) = %v, want %v", tc.owner, tc.v, got, tc.want)
		}
		if tc.want && tc.owner == "o" {
			op := ops[tc.v.Seq-1]
			if r := s.Apply(&op); r != Duplicate {
				t.Errorf("Holds(%s, %v) but Apply says %v", tc.owner, tc.v, r)
			}
		}
	}
	gone["o"] = true
	if s.Holds("o", Version{3, 1}) {
		t.Errorf("Holds an owner Alive rejects: Apply would refuse its ops")
	}
	gone["o"] = false
	s.Tombstone("o", 3, 1)
	if s.Holds("o", Version{3, 1}) {
		t.Errorf("Holds a tombstoned incarnation: Apply would refuse its ops")
	}
}

// The ops of a batch mostly share their owner, scope and group: decoding
// one after another reuses those strings instead of allocating copies.
func TestDecodeOpAfterSharesNames(t *testing.T) {
	owner := New(Config{Self: "owner", Incarnation: 1})
	first := owner.LocalJoin("scope", "/group", "m1", 1, nil, 1)
	second := owner.LocalJoin("scope", "/group", "m2", 1, Meta{"k": "v"}, 2)
	other := owner.LocalJoin("scope", "/other", "m3", 1, nil, 3)
	prev, err := DecodeOp(AppendOp(nil, &first))
	if err != nil {
		t.Fatal(err)
	}
	next, err := DecodeOpAfter(AppendOp(nil, &second), &prev)
	if err != nil {
		t.Fatal(err)
	}
	if next.Member != "m2" || next.Meta["k"] != "v" || next.Seq != 2 || next.Group != "/group" {
		t.Fatalf("decoded %v, want %v", &next, &second)
	}
	for name, pair := range map[string][2]string{"owner": {prev.Owner, next.Owner}, "scope": {prev.Scope, next.Scope}, "group": {prev.Group, next.Group}} {
		if unsafe.StringData(pair[0]) != unsafe.StringData(pair[1]) {
			t.Errorf("the %s is a copy, not the previous op's string", name)
		}
	}
	third, err := DecodeOpAfter(AppendOp(nil, &other), &next)
	if err != nil {
		t.Fatal(err)
	}
	if third.Group != "/other" {
		t.Errorf("group %q, want /other", third.Group)
	}
	plain := owner.LocalJoin("scope", "/group", "m4", 1, nil, 4)
	encoded := AppendOp(nil, &plain)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := DecodeOpAfter(encoded, &prev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 { // the member's name
		t.Errorf("%.0f allocations per op after another of its group, want 1", allocs)
	}
}
