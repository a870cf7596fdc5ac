package crdt

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios replays the traces in testdata/scenarios: each walks the
// design's rules one step at a time and prints every replica it touches.
// Rewrite the expected output with -rewrite after a deliberate change.
//
// Commands (node arguments name replicas; ops are named owner@inc.seq;
// digest lines print as owner@inc.seq#chain, the chain hash's first four
// hex digits):
//
//	node name=a [inc=1] [clock=N]           start a replica (or restart it empty); its clock reads N
//	join node=a scope=s group=/g member=m [count=1] [meta=(k=v, ...)] [time=0]
//	leave node=a scope=s group=/g member=m [count=1]
//	meta node=a scope=s group=/g member=m [meta=(k=v, ...)]
//	deliver to=b ops=(a@1.2, a@1.1, ...)    Apply, printing each result
//	tombstone node=b owner=a inc=1 [now=0]
//	collect node=b before=10 [dead=(a, ...)] collect tombstones; the named owners are no longer alive
//	refute node=a                           prints the state it announces (named owner@inc.seq)
//	merge to=b states=(a@2.1, ...)          MergeOwner, printing each result
//	pull to=b from=a                        b sends its digest, merges a's delta
//	state node=b
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		w := &world{nodes: map[string]*State{}, ops: map[string]Op{}, states: map[string]OwnerState{},
			heard: map[string][]string{}, dead: map[string]map[string]bool{}}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			out, err := w.run(t, td)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}

type world struct {
	nodes map[string]*State
	ops   map[string]Op
	// states are the owner states refutes announced, by owner@inc.seq.
	states map[string]OwnerState
	// dead is, per replica, the owners its membership layer no longer
	// lists as alive.
	dead map[string]map[string]bool
	// heard is what each replica's observer reported since it was last
	// printed: what a subscriber to that replica would have been told.
	heard map[string][]string
}

func (w *world) node(t *testing.T, td *datadriven.TestData, key string) *State {
	var name string
	td.ScanArgs(t, key, &name)
	s, ok := w.nodes[name]
	if !ok {
		td.Fatalf(t, "no node %q", name)
	}
	return s
}

func (w *world) run(t *testing.T, td *datadriven.TestData) (string, error) {
	var b strings.Builder
	switch td.Cmd {
	case "node":
		var name string
		inc := uint64(1)
		td.ScanArgs(t, "name", &name)
		td.MaybeScanArgs(t, "inc", &inc)
		var clock func() uint64
		if td.HasArg("clock") {
			var now uint64
			td.ScanArgs(t, "clock", &now)
			clock = func() uint64 { return now }
		}
		dead := map[string]bool{}
		w.dead[name] = dead
		w.nodes[name] = New(Config{Self: name, Incarnation: inc, Observer: func(c *Change) {
			w.heard[name] = append(w.heard[name], describeChange(c))
		}, Alive: func(owner string) bool { return !dead[owner] }, Clock: clock})
		w.printState(&b, name)

	case "join", "leave", "meta":
		s := w.node(t, td, "node")
		var scope, group, member string
		td.ScanArgs(t, "scope", &scope)
		td.ScanArgs(t, "group", &group)
		td.ScanArgs(t, "member", &member)
		count := uint32(1)
		td.MaybeScanArgs(t, "count", &count)
		var op Op
		var err error
		switch td.Cmd {
		case "join":
			var now int64
			td.MaybeScanArgs(t, "time", &now)
			op = s.LocalJoin(scope, group, member, count, scanMeta(td), now)
		case "leave":
			op, err = s.LocalLeave(scope, group, member, count)
		case "meta":
			op, err = s.LocalSetMeta(scope, group, member, scanMeta(td))
		}
		if err != nil {
			return "", err
		}
		w.ops[opName(&op)] = op
		fmt.Fprintf(&b, "op %s\n", describeOp(&op))
		w.printState(&b, op.Owner)

	case "deliver":
		s := w.node(t, td, "to")
		arg, _ := td.Arg("ops")
		for _, name := range arg.Vals {
			op, ok := w.ops[name]
			if !ok {
				return "", fmt.Errorf("no op %q", name)
			}
			fmt.Fprintf(&b, "%s: %s\n", name, s.Apply(&op))
		}
		self, _ := s.Self()
		w.printState(&b, self)

	case "tombstone":
		s := w.node(t, td, "node")
		var owner string
		var inc uint64
		td.ScanArgs(t, "owner", &owner)
		td.ScanArgs(t, "inc", &inc)
		var now int64
		td.MaybeScanArgs(t, "now", &now)
		fmt.Fprintf(&b, "changed: %t\n", s.Tombstone(owner, inc, now))
		self, _ := s.Self()
		w.printState(&b, self)

	case "collect":
		s := w.node(t, td, "node")
		self, _ := s.Self()
		var before int64
		td.ScanArgs(t, "before", &before)
		if arg, ok := td.Arg("dead"); ok {
			for _, owner := range arg.Vals {
				w.dead[self][owner] = true
			}
		}
		fmt.Fprintf(&b, "collected: %d\n", s.CollectTombstones(before))
		w.printState(&b, self)

	case "refute":
		s := w.node(t, td, "node")
		st := s.Refute()
		name := fmt.Sprintf("%s@%s", st.Owner, st.Version)
		w.states[name] = st
		fmt.Fprintf(&b, "state %s\n", describeState(&st))
		self, _ := s.Self()
		w.printState(&b, self)

	case "merge":
		s := w.node(t, td, "to")
		arg, _ := td.Arg("states")
		for _, name := range arg.Vals {
			st, ok := w.states[name]
			if !ok {
				return "", fmt.Errorf("no state %q", name)
			}
			fmt.Fprintf(&b, "%s: %s\n", name, s.MergeOwner(&st))
		}
		self, _ := s.Self()
		w.printState(&b, self)

	case "pull":
		to, from := w.node(t, td, "to"), w.node(t, td, "from")
		dg := to.Digest()
		d := from.Delta(&dg)
		fmt.Fprintf(&b, "digest %s\n", describeDigest(&dg))
		fmt.Fprintf(&b, "delta  %s\n", describeDelta(&d))
		to.Merge(&d)
		self, _ := to.Self()
		w.printState(&b, self)

	case "state":
		s := w.node(t, td, "node")
		self, _ := s.Self()
		w.printState(&b, self)

	default:
		td.Fatalf(t, "unknown command %q", td.Cmd)
	}
	return b.String(), nil
}

func scanMeta(td *datadriven.TestData) Meta {
	arg, ok := td.Arg("meta")
	if !ok {
		return nil
	}
	m := Meta{}
	for _, kv := range arg.Vals {
		k, v, _ := strings.Cut(kv, "=")
		if k != "" {
			m[k] = v
		}
	}
	return m
}

func opName(op *Op) string { return fmt.Sprintf("%s@%d.%d", op.Owner, op.Incarnation, op.Seq) }

func describeOp(op *Op) string {
	s := fmt.Sprintf("%s %s %s %s %s", opName(op), op.Kind, op.Scope, op.Group, op.Member)
	if op.Kind != SetMeta {
		s += fmt.Sprintf(" x%d", op.Count)
	}
	if op.Kind != Leave && op.Meta != nil {
		s += " " + describeMeta(op.Meta)
	}
	return s
}

func describeMeta(m Meta) string {
	var kvs []string
	for k, v := range m {
		kvs = append(kvs, k+"="+v)
	}
	sort.Strings(kvs)
	return "{" + strings.Join(kvs, ",") + "}"
}

func describeChange(c *Change) string {
	s := fmt.Sprintf("%s %s %s %s/%s x%d", c.Kind, c.Group.Scope, c.Group.Name, c.Owner, c.Entry.Member, c.Entry.Count)
	if c.Entry.Meta != nil {
		s += " " + describeMeta(c.Entry.Meta)
	}
	if c.GroupCreated {
		s += " (group created)"
	}
	if c.GroupRemoved {
		s += " (group removed)"
	}
	return s
}

func describeVersions(vs []OwnerVersion, withSeq bool) string {
	if len(vs) == 0 {
		return "-"
	}
	var parts []string
	for _, ov := range vs {
		if withSeq {
			// The chain's first four hex digits tell chains apart.
			parts = append(parts, fmt.Sprintf("%s@%s#%04x", ov.Owner, ov.Version, ov.Chain>>48))
		} else {
			parts = append(parts, fmt.Sprintf("%s@%d", ov.Owner, ov.Incarnation))
		}
	}
	return strings.Join(parts, " ")
}

func describeDigest(dg *Digest) string {
	return fmt.Sprintf("owners %s; dead %s", describeVersions(dg.Owners, true), describeVersions(dg.Tombstones, false))
}

func describeState(st *OwnerState) string {
	n := 0
	for _, g := range st.Groups {
		n += len(g.Entries)
	}
	return fmt.Sprintf("%s@%s (%d entries)", st.Owner, st.Version, n)
}

func describeDelta(d *Delta) string {
	if d.Empty() {
		return "empty"
	}
	var parts []string
	for i := range d.Owners {
		parts = append(parts, describeState(&d.Owners[i]))
	}
	owners := "-"
	if len(parts) > 0 {
		owners = strings.Join(parts, " ")
	}
	return fmt.Sprintf("owners %s; dead %s", owners, describeVersions(d.Tombstones, false))
}

// printState prints a replica: its versions per owner, tombstones, buffered
// ops, whether it must refute, its entries, and what its observer reported
// since the last print.
func (w *world) printState(b *strings.Builder, name string) {
	s := w.nodes[name]
	dg := s.Digest()
	fmt.Fprintf(b, "%s: %s\n", name, describeDigest(&dg))
	var pending []string
	for _, owner := range s.Owners() {
		if n := s.Pending(owner); n > 0 {
			pending = append(pending, fmt.Sprintf("%s:%d", owner, n))
		}
	}
	if len(pending) > 0 {
		fmt.Fprintf(b, "  pending %s\n", strings.Join(pending, " "))
	}
	if s.NeedsRefute() {
		fmt.Fprintf(b, "  needs refute\n")
	}
	if n := s.Conflicts(); n > 0 {
		fmt.Fprintf(b, "  conflicts %d\n", n)
	}
	for _, scope := range s.Scopes() {
		var gs []*Group
		s.Groups(scope, func(g *Group) { gs = append(gs, g) })
		slices.SortFunc(gs, func(x, y *Group) int { return strings.Compare(x.Name, y.Name) })
		for _, g := range gs {
			var es []string
			g.Each(func(owner string, e *Entry) {
				d := fmt.Sprintf("%s/%s x%d t=%d", owner, e.Member, e.Count, e.Joined)
				if e.Meta != nil {
					d += " " + describeMeta(e.Meta)
				}
				es = append(es, d)
			})
			sort.Strings(es)
			fmt.Fprintf(b, "  %s %s: %s\n", scope, g.Name, strings.Join(es, ", "))
		}
	}
	for _, c := range w.heard[name] {
		fmt.Fprintf(b, "  heard %s\n", c)
	}
	w.heard[name] = nil
}
