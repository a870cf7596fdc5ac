package testcluster

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpggo/cpg/registry"
)

var (
	seedFlag  = flag.Int64("testcluster.seed", 0, "run the randomized convergence test with this seed only")
	seedsFlag = flag.Int("testcluster.seeds", 0, "run the randomized convergence test with this many seeds (default 8, 1 under -short)")
	scaleFlag = flag.Int("testcluster.timescale", 0, "stretch the failure detector's timings by this factor (default 3 under the race detector, else 1)")
)

// The scopes, groups and member IDs the schedules draw from: few, so
// that owners join the same member again, leave it and change its
// metadata.
var (
	testScopes  = []string{registry.DefaultScope, "jobs"}
	testGroups  = []string{"/svc/db", "/svc/api", "/svc/cache", "/batch/workers"}
	testMembers = []string{"m0", "m1", "m2", "m3", "m4", "m5"}
)

const (
	clusterSize = 10
	// scheduleSteps actions, scheduleGap apart on average, make the
	// faulty phase of a run.
	scheduleSteps = 70
	scheduleGap   = 40 * time.Millisecond
	// maxKills bounds the nodes a schedule kills for good.
	maxKills = 2
	// convergeWithin bounds the time from the last fault to a cluster that
	// agrees with its owners.
	convergeWithin = 30 * time.Second
	// settle is how long a cluster must keep agreeing with its owners to
	// count as converged.
	settle = 1500 * time.Millisecond
	// The final partition lasts from finalCutMin to finalCutMax: from
	// shorter than the failure detector's verdict to well past it.
	finalCutMin = 300 * time.Millisecond
	finalCutMax = 2500 * time.Millisecond
)

// Ten nodes over real TCP run a seeded schedule of joins, leaves and
// metadata changes on every node, mixed with lossy, slow and duplicating
// links, partitions, graceful restarts, crashes and kills. Once the faults
// stop, within convergeWithin every running node's digest must be the same
// and every node must hold, for each running owner, exactly the members
// that owner's own acknowledged calls left, and nothing of an owner that
// is not running, and keep doing so for the settle period; a killed
// owner's members, once gone from a node, must never come back there.
func TestRandomizedFaultsConverge(t *testing.T) {
	seeds := 8
	if testing.Short() {
		seeds = 1
	}
	if *seedsFlag > 0 {
		seeds = *seedsFlag
	}
	list := make([]int64, seeds)
	for i := range list {
		list[i] = int64(i + 1)
	}
	if *seedFlag != 0 {
		list = []int64{*seedFlag}
	}
	// Two clusters at a time: their nodes mostly wait on timers, and a
	// busier machine is one more fault.
	slots := make(chan struct{}, 2)
	var mu sync.Mutex
	var times []time.Duration
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range list {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				t.Parallel()
				slots <- struct{}{}
				defer func() { <-slots }()
				took, relapses := runSchedule(t, seed)
				t.Logf("seed %d: converged %v after the last fault (%d relapses)", seed, took.Round(time.Millisecond), relapses)
				mu.Lock()
				times = append(times, took)
				mu.Unlock()
			})
		}
	})
	if len(times) > 0 {
		slices.Sort(times)
		t.Logf("%d seeds converged after the last fault in: median %v, max %v",
			len(times), times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
	}
}

// run is one schedule's state.
type run struct {
	t      *testing.T
	rng    *rand.Rand
	c      *Cluster
	m      *model
	names  []string
	killed []string
	cut    bool // a partition is in place
	counts map[string]int
}

func runSchedule(t *testing.T, seed int64) (converged time.Duration, relapses int) {
	logs := &logBuffer{}
	r := &run{
		t:      t,
		rng:    rand.New(rand.NewPCG(uint64(seed), 0x5c4ed)),
		c:      New(Config{Seed: seed, TimeScale: scale(), Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}),
		m:      newModel(),
		counts: make(map[string]int),
	}
	t.Cleanup(func() { r.c.Close() })
	// Registered last, so it runs first: the report needs running nodes.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: the nodes:\n%s", seed, r.describe())
			t.Logf("seed %d: the nodes' logs:\n%s", seed, logs.String())
		}
	})
	for i := range clusterSize {
		name := fmt.Sprintf("n%d", i)
		r.names = append(r.names, name)
		if _, err := r.c.Start(name); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		r.m.fresh(name)
	}
	for range scheduleSteps {
		r.step()
		r.pause()
	}
	// The schedule ends in a partition, long enough for memberlist to rule
	// the other side dead or not, with operations on both sides.
	r.c.Partition(r.side())
	r.counts["partition"]++
	cut := time.Duration(scale()) * (finalCutMin + time.Duration(r.rng.Int64N(int64(finalCutMax-finalCutMin))))
	for range int(cut / scheduleGap) {
		r.operate()
		r.pause()
	}
	r.c.ClearLinkFaults()
	r.c.Heal()
	faultsEnd := time.Now()
	t.Logf("seed %d: schedule %v, killed %v", seed, r.counts, r.killed)

	// The cluster has converged once it agrees with the model and keeps
	// agreeing for the settle period. A verdict the failure detector
	// reached during the last partition may still arrive after the heal
	// and take a live owner's members away until it refutes: that is a
	// relapse, counted and reported, and the settle period starts again.
	// A killed owner's members, once gone from a node, must never return.
	var last string
	var agreeSince time.Time
	relapses = 0
	goneFrom := make(map[string]map[string]bool) // node -> killed owners seen gone there
	for {
		now := time.Now()
		agree := r.agrees(&last)
		r.checkKilledStayGone(goneFrom)
		switch {
		case agree && agreeSince.IsZero():
			agreeSince = now
		case !agree && !agreeSince.IsZero():
			relapses++
			t.Logf("seed %d: relapse %v after the faults stopped: %s", seed, now.Sub(faultsEnd).Round(time.Millisecond), last)
			agreeSince = time.Time{}
		}
		if agree && now.Sub(agreeSince) >= settle {
			break
		}
		if now.Sub(faultsEnd) > convergeWithin {
			t.Fatalf("seed %d: not converged %v after the faults stopped (%d relapses): %s", seed, convergeWithin, relapses, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return agreeSince.Sub(faultsEnd), relapses
}

// checkKilledStayGone fails the test if a killed owner's member is back
// on a node it had already left.
func (r *run) checkKilledStayGone(goneFrom map[string]map[string]bool) {
	for _, name := range r.c.Running() {
		seen, err := view(r.c.Node(name), testScopes, testGroups)
		if err != nil {
			r.t.Fatalf("%s: %v", name, err)
		}
		if goneFrom[name] == nil {
			goneFrom[name] = make(map[string]bool)
		}
		for _, dead := range r.killed {
			switch {
			case len(seen[dead]) == 0:
				goneFrom[name][dead] = true
			case goneFrom[name][dead]:
				r.t.Fatalf("killed owner %s's members came back on %s: %v", dead, name, seen[dead])
			}
		}
	}
}

// agrees reports whether every running node holds the state the model
// implies and the same digest; if not, why goes in *why.
func (r *run) agrees(why *string) bool {
	names := r.c.Running()
	for _, name := range names {
		if d := r.modelDiff(name); d != "" {
			*why = d
			return false
		}
	}
	first := r.c.Node(names[0]).Summary()
	for _, name := range names[1:] {
		if s := r.c.Node(name).Summary(); s != first {
			*why = fmt.Sprintf("digest of %s %v, of %s %v", name, s, names[0], first)
			return false
		}
	}
	return true
}

func (r *run) modelDiff(name string) string {
	seen, err := view(r.c.Node(name), testScopes, testGroups)
	if err != nil {
		r.t.Fatalf("%s: %v", name, err)
	}
	return r.m.diff(name, seen)
}

// step makes one random move of the schedule.
func (r *run) step() {
	switch x := r.rng.IntN(100); {
	case x < 65:
		r.operate()
	case x < 85:
		r.linkFaults()
	case x < 93:
		r.partition()
	case x < 97:
		r.restart()
	default:
		r.kill()
	}
}

func (r *run) pickRunning() string {
	running := r.c.Running()
	return running[r.rng.IntN(len(running))]
}

// operate makes one join, leave or metadata change on a running node and
// records it in the model once the node acknowledged it.
func (r *run) operate() {
	owner := r.pickRunning()
	node := r.c.Node(owner)
	held := r.m.held(owner)
	meta := fmt.Sprintf("v%d", r.rng.IntN(1000))
	kind := r.rng.IntN(10)
	if len(held) == 0 {
		kind = 0
	}
	switch {
	case kind < 5:
		k := entryKey{testScopes[r.rng.IntN(len(testScopes))], testGroups[r.rng.IntN(len(testGroups))], testMembers[r.rng.IntN(len(testMembers))]}
		var md registry.Meta
		if r.rng.IntN(2) == 0 {
			md = registry.Meta{"v": meta}
		} else {
			meta = ""
		}
		scope, _ := node.Scope(k.scope)
		if err := scope.Join(k.group, k.member, md); err != nil {
			r.t.Fatalf("%s: join %v: %v", owner, k, err)
		}
		r.m.join(owner, k, meta)
		r.counts["join"]++
	case kind < 8:
		k := held[r.rng.IntN(len(held))]
		scope, _ := node.Scope(k.scope)
		if err := scope.Leave(k.group, k.member); err != nil {
			r.t.Fatalf("%s: leave %v: %v", owner, k, err)
		}
		r.m.leave(owner, k)
		r.counts["leave"]++
	default:
		k := held[r.rng.IntN(len(held))]
		scope, _ := node.Scope(k.scope)
		if err := scope.SetMeta(k.group, k.member, registry.Meta{"v": meta}); err != nil {
			r.t.Fatalf("%s: set meta %v: %v", owner, k, err)
		}
		r.m.setMeta(owner, k, meta)
		r.counts["meta"]++
	}
}

// linkFaults makes one directed link lossy, slow and duplicating, or
// clears it.
func (r *run) linkFaults() {
	from := r.names[r.rng.IntN(len(r.names))]
	to := r.names[r.rng.IntN(len(r.names))]
	if from == to {
		return
	}
	if r.rng.IntN(4) == 0 {
		r.c.SetLinkFaults(from, to, LinkFaults{})
		r.counts["clear link"]++
		return
	}
	delay := time.Duration(r.rng.Int64N(int64(60 * time.Millisecond)))
	r.c.SetLinkFaults(from, to, LinkFaults{
		Drop:      r.rng.Float64() * 0.5,
		Duplicate: r.rng.Float64() * 0.3,
		DelayMin:  delay / 4,
		DelayMax:  delay,
	})
	r.counts["faulty link"]++
}

// partition cuts a few nodes off the rest, or heals the cut.
func (r *run) partition() {
	if r.cut {
		r.c.Heal()
		r.cut = false
		r.counts["heal"]++
		return
	}
	r.c.Partition(r.side())
	r.cut = true
	r.counts["partition"]++
}

// side draws one to four nodes to cut off the rest.
func (r *run) side() []string {
	names := slices.Clone(r.names)
	r.rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	return names[:1+r.rng.IntN(4)]
}

func (r *run) pause() {
	time.Sleep(time.Duration(r.rng.Int64N(int64(2 * scheduleGap))))
}

// restart stops a running node, gracefully or by a crash, and starts it
// again with no members, if it has a running node to join through.
func (r *run) restart() {
	name := r.pickRunning()
	if len(r.c.Running()) < 2 || !r.hasContact(name) {
		return
	}
	if r.rng.IntN(3) == 0 {
		if err := r.c.Kill(name); err != nil {
			r.t.Fatalf("kill %s: %v", name, err)
		}
		if _, err := r.c.Start(name); err != nil {
			r.t.Fatalf("start %s again after a crash: %v", name, err)
		}
		r.counts["crash restart"]++
	} else {
		if _, err := r.c.Restart(name); err != nil {
			r.t.Fatalf("restart %s: %v", name, err)
		}
		r.counts["restart"]++
	}
	r.m.fresh(name)
}

// hasContact reports whether name reaches a running node other than
// itself.
func (r *run) hasContact(name string) bool {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return len(r.c.contactsLocked(name)) > 0
}

// kill crashes a running node for good.
func (r *run) kill() {
	if len(r.killed) == maxKills {
		return
	}
	name := r.pickRunning()
	if err := r.c.Kill(name); err != nil {
		r.t.Fatalf("kill %s: %v", name, err)
	}
	r.m.gone(name)
	r.killed = append(r.killed, name)
	r.counts["kill"]++
}

// describe tells, for each running node, its digest, how it differs from
// the model, and how its failure detector sees the others.
func (r *run) describe() string {
	var b strings.Builder
	for _, name := range r.c.Running() {
		fmt.Fprintf(&b, "%s (started with incarnation %d), digest %v", name, r.c.Incarnation(name), r.c.Node(name).Summary())
		if d := r.modelDiff(name); d != "" {
			fmt.Fprintf(&b, ", %s", d)
		}
		b.WriteString(", sees")
		for _, info := range r.c.Node(name).Nodes() {
			if info.Name != name {
				fmt.Fprintf(&b, " %s=%v/%d", info.Name, info.Status, info.Incarnation)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// logBuffer collects the nodes' logs of one run, for its failure report.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// scale is the time scale of the run: timeScale unless the flag sets one.
func scale() int {
	if *scaleFlag > 0 {
		return *scaleFlag
	}
	return timeScale
}
