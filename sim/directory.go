package sim

import (
	"slices"
	"time"

	"github.com/cpggo/cpg/membership/hyparview"
)

// The simulator's stand-in for memberlist: what each node's failure
// detector reports as the cluster's membership, which the HyParView cores
// read through hyparview.Directory to rejoin, mix and reconnect.
//
// It is honest about partitions. Nodes that can gossip with each other
// share one member view (alive members, and failed members with when they
// were declared failed). A crashed node is declared failed in its view
// after DetectDelay; a partition splits every view by side after
// DetectDelay, each side declaring the others failed. Nothing joins two
// views again but a successful reconnect (a core's Ready.Reconnect that
// reaches a live node of another view): the two views then merge after
// MergeDelay, as memberlist's push-pull does on join. Failed members older
// than ReconnectTimeout are forgotten.
//
// Views are shared: at 10,000 nodes a node holds no copy of the member
// list, only the index of its view.

// memberView is one converged member list.
type memberView struct {
	alive  []int32 // node indexes; pos[i] is i's place here
	failed []failedMember
}

type failedMember struct {
	node  int32
	since time.Duration
}

// directory holds every member view and which one each node is in.
type directory struct {
	views []*memberView
	view  []int32 // per node: its view, or -1 while it is in none
	pos   []int32 // per node: its index in its view's alive list
}

func (d *directory) grow(n int) {
	for len(d.view) < n {
		d.view = append(d.view, -1)
		d.pos = append(d.pos, -1)
	}
}

// add makes node i an alive member of view v, dropping it from any view it
// was in and from v's failed list.
func (d *directory) add(i int32, v int32) {
	d.remove(i)
	mv := d.views[v]
	d.view[i], d.pos[i] = v, int32(len(mv.alive))
	mv.alive = append(mv.alive, i)
	mv.failed = slices.DeleteFunc(mv.failed, func(f failedMember) bool { return f.node == i })
}

// remove takes node i out of its view's alive list.
func (d *directory) remove(i int32) {
	v := d.view[i]
	if v < 0 {
		return
	}
	mv := d.views[v]
	last := mv.alive[len(mv.alive)-1]
	mv.alive[d.pos[i]] = last
	d.pos[last] = d.pos[i]
	mv.alive = mv.alive[:len(mv.alive)-1]
	d.view[i], d.pos[i] = -1, -1
}

// newView returns the index of a new, empty view.
func (d *directory) newView() int32 {
	d.views = append(d.views, &memberView{})
	return int32(len(d.views) - 1)
}

// memberJoin is memberlist's join of a new process of node i through
// contact (or, with none, a cluster of its own).
func (s *Simulator) memberJoin(i int32, contact int32, ok bool) {
	d := &s.dir
	d.grow(len(s.nodes))
	v := int32(-1)
	if ok {
		v = d.view[contact]
	}
	if v < 0 {
		v = d.newView()
	}
	d.add(i, v)
}

// detectCrash declares node i failed in its view, DetectDelay after it
// crashed, unless it came back meanwhile.
func (s *Simulator) detectCrash(i int32, gen uint32) {
	n := s.nodes[i]
	if n.alive || n.gen != gen {
		return
	}
	d := &s.dir
	v := d.view[i]
	if v < 0 {
		return
	}
	d.remove(i)
	d.views[v].failed = append(d.views[v].failed, failedMember{node: i, since: s.now})
}

// splitViews is what DetectDelay of partition does to the member lists:
// every view splits by side, each part declaring the others failed.
func (s *Simulator) splitViews(epoch int) {
	if s.partitionEpoch != epoch || !s.partitioned {
		return
	}
	d := &s.dir
	for v := range int32(len(d.views)) {
		mv := d.views[v]
		bySide := map[int32][]int32{}
		var sides []int32
		for _, i := range mv.alive {
			sd := s.side[i]
			if _, seen := bySide[sd]; !seen {
				sides = append(sides, sd)
			}
			bySide[sd] = append(bySide[sd], i)
		}
		if len(sides) < 2 {
			continue
		}
		slices.Sort(sides)
		oldFailed := slices.Clone(mv.failed)
		for k, sd := range sides {
			target := v
			if k > 0 {
				target = d.newView()
				d.views[target].failed = slices.Clone(oldFailed)
			}
			for _, i := range bySide[sd] {
				d.add(i, target)
			}
			for _, other := range sides {
				if other == sd {
					continue
				}
				for _, i := range bySide[other] {
					d.views[target].failed = append(d.views[target].failed, failedMember{node: i, since: s.now})
				}
			}
		}
	}
}

// reconnect carries out a core's Ready.Reconnect: memberlist's join of a
// failed member. If the member is alive and reachable, the two views merge
// after MergeDelay.
func (s *Simulator) reconnect(from int32, to int32) {
	s.stats.Reconnects++
	delay := s.cfg.Latency.Sample(s.rng)
	s.schedule(&event{at: s.now + delay, kind: evCall, call: func() {
		src, dst := s.nodes[from], s.nodes[to]
		if !src.alive || !dst.alive || s.side[from] != s.side[to] {
			return
		}
		s.schedule(&event{at: s.now + s.cfg.MergeDelay, kind: evCall, call: func() { s.mergeViews(from, to) }})
	}})
}

// mergeViews joins the views of nodes a and b, if both still have one.
func (s *Simulator) mergeViews(a, b int32) {
	d := &s.dir
	va, vb := d.view[a], d.view[b]
	if va < 0 || vb < 0 || va == vb || s.side[a] != s.side[b] {
		return
	}
	if len(d.views[va].alive) < len(d.views[vb].alive) {
		va, vb = vb, va
	}
	s.stats.ViewMerges++
	into, from := d.views[va], d.views[vb]
	for _, i := range slices.Clone(from.alive) {
		d.add(i, va)
	}
	failed := append(slices.Clone(into.failed), from.failed...)
	slices.SortFunc(failed, func(x, y failedMember) int {
		if x.node != y.node {
			return int(x.node - y.node)
		}
		return int(y.since - x.since) // latest first
	})
	failed = slices.CompactFunc(failed, func(x, y failedMember) bool { return x.node == y.node })
	into.failed = slices.DeleteFunc(failed, func(f failedMember) bool { return d.view[f.node] == va })
	from.failed = nil
}

// forgetFailed drops failed members older than ReconnectTimeout, as the
// driver stops retrying them.
func (s *Simulator) forgetFailed() {
	for _, mv := range s.dir.views {
		mv.failed = slices.DeleteFunc(mv.failed, func(f failedMember) bool { return s.now-f.since > s.cfg.ReconnectTimeout })
	}
}

// nodeDirectory is node i's hyparview.Directory: its view of the shared
// member lists.
type nodeDirectory struct {
	s *Simulator
	i int32
}

func (nd nodeDirectory) mine() *memberView {
	if v := nd.s.dir.view[nd.i]; v >= 0 {
		return nd.s.dir.views[v]
	}
	return &memberView{}
}

// Members implements hyparview.Directory.
func (nd nodeDirectory) Members() int { return len(nd.mine().alive) }

// Member implements hyparview.Directory.
func (nd nodeDirectory) Member(k int) hyparview.Peer {
	return hyparview.Peer{Name: nd.s.nodes[nd.mine().alive[k]].name}
}

// Failed implements hyparview.Directory.
func (nd nodeDirectory) Failed() int { return len(nd.mine().failed) }

// FailedMember implements hyparview.Directory.
func (nd nodeDirectory) FailedMember(k int) (hyparview.Peer, int) {
	f := nd.mine().failed[k]
	return hyparview.Peer{Name: nd.s.nodes[f.node].name}, int((nd.s.now - f.since) / nd.s.cfg.Tick)
}

// Gone implements hyparview.Directory: a node this one's view does not
// list alive.
func (nd nodeDirectory) Gone(name string) bool {
	p := nd.s.index(name)
	return int(p) >= len(nd.s.dir.view) || nd.s.dir.view[p] != nd.s.dir.view[nd.i]
}
