package crdt

import "fmt"

// OpKind says what an operation does to one entry.
type OpKind uint8

const (
	// Join adds Count to the entry's count, creating it (with Meta and Time
	// as its join time) when absent; a non-nil Meta replaces the entry's.
	Join OpKind = iota + 1
	// Leave subtracts Count; the entry goes when its count reaches zero.
	Leave
	// SetMeta replaces the entry's metadata.
	SetMeta
)

func (k OpKind) String() string {
	switch k {
	case Join:
		return "join"
	case Leave:
		return "leave"
	case SetMeta:
		return "meta"
	default:
		return fmt.Sprintf("OpKind(%d)", uint8(k))
	}
}

// Meta is a member's metadata: a small string map, never modified after it
// is stored (an update replaces the whole map).
type Meta map[string]string

// Version orders everything one owner has done: incarnations first, then
// sequence numbers within an incarnation.
type Version struct {
	Incarnation uint64
	Seq         uint64
}

// Less reports whether v comes before w.
func (v Version) Less(w Version) bool {
	if v.Incarnation != w.Incarnation {
		return v.Incarnation < w.Incarnation
	}
	return v.Seq < w.Seq
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Incarnation, v.Seq) }

// Op is one change an owner made to its own entries. Only the owner creates
// ops; every replica applies them in (Incarnation, Seq) order.
type Op struct {
	Owner       string
	Incarnation uint64
	Seq         uint64
	Kind        OpKind
	Scope       string
	Group       string
	Member      string
	Count       uint32
	Meta        Meta
	Time        int64 // owner's wall clock, Unix nanoseconds: the join time of a new entry
}

// Version returns the op's place in its owner's history.
func (o *Op) Version() Version { return Version{o.Incarnation, o.Seq} }

func (o *Op) String() string {
	return fmt.Sprintf("%s@%d.%d %s %s/%s/%s x%d", o.Owner, o.Incarnation, o.Seq, o.Kind, o.Scope, o.Group, o.Member, o.Count)
}
