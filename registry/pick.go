package registry

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Strategy says which member Pick chooses.
type Strategy uint8

const (
	// Closest: a local member if there is one (at random, weighted by join
	// count), else one on the remote node with the lowest round-trip time.
	Closest Strategy = iota + 1
	// Furthest: a member on the remote node with the highest round-trip
	// time, else a local one.
	Furthest
	// Random: any member, weighted by join count.
	Random
	// Local: a local member, weighted by join count.
	Local
	// Remote: a remote member, weighted by join count.
	Remote
	// Oldest: the member that joined first (the same on every node).
	Oldest
	// Newest: the member that joined last (the same on every node).
	Newest
)

var strategyNames = map[Strategy]string{
	Closest: "closest", Furthest: "furthest", Random: "random", Local: "local",
	Remote: "remote", Oldest: "oldest", Newest: "newest",
}

func (s Strategy) String() string {
	if name, ok := strategyNames[s]; ok {
		return name
	}
	return fmt.Sprintf("Strategy(%d)", uint8(s))
}

// ParseStrategy turns a strategy's name into the Strategy.
func ParseStrategy(name string) (Strategy, error) {
	for s, n := range strategyNames {
		if n == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("registry: unknown pick strategy %q (want closest, furthest, random, local, remote, oldest or newest)", name)
}

// Pick chooses one member of the stored group that best matches the
// concrete name, by strategy, skipping members whose ID is in exclude. It
// returns the matched group's name with the member.
func (s *Scope) Pick(name string, strategy Strategy, exclude ...string) (string, Member, error) {
	if _, ok := strategyNames[strategy]; !ok {
		return "", Member{}, fmt.Errorf("registry: unknown pick strategy %d", strategy)
	}
	v, snap, err := s.find(name)
	if err != nil {
		return "", Member{}, err
	}
	var m *Member
	switch strategy {
	case Random:
		m = weightedPick(snap.members, snap.localWeight+snap.remoteWeight, exclude)
	case Local:
		m = weightedPick(snap.localMembers(), snap.localWeight, exclude)
	case Remote:
		m = weightedPick(snap.remoteMembers(), snap.remoteWeight, exclude)
	case Closest:
		if m = weightedPick(snap.localMembers(), snap.localWeight, exclude); m == nil {
			m = s.byRTT(snap.remoteMembers(), exclude, false)
		}
	case Furthest:
		if m = s.byRTT(snap.remoteMembers(), exclude, true); m == nil {
			m = weightedPick(snap.localMembers(), snap.localWeight, exclude)
		}
	case Oldest, Newest:
		m = byAge(snap, exclude, strategy == Newest)
	}
	if m == nil {
		return v.name, Member{}, fmt.Errorf("%w: %s pick in group %q of scope %q", ErrNoMember, strategy, v.name, s.idx.name)
	}
	return v.name, *m, nil
}

// weightedPick draws a member with probability proportional to its join
// count. Without exclusions it needs one random number and one scan.
func weightedPick(ms []Member, weight int, exclude []string) *Member {
	if len(exclude) > 0 {
		weight = 0
		for i := range ms {
			if !slices.Contains(exclude, ms[i].ID) {
				weight += int(ms[i].Count)
			}
		}
	}
	if weight <= 0 {
		return nil
	}
	if len(exclude) == 0 && weight == len(ms) {
		return &ms[rand.IntN(len(ms))]
	}
	r := rand.IntN(weight)
	for i := range ms {
		if len(exclude) > 0 && slices.Contains(exclude, ms[i].ID) {
			continue
		}
		if r < int(ms[i].Count) {
			return &ms[i]
		}
		r -= int(ms[i].Count)
	}
	return nil
}

// byRTT picks among the members of the node with the lowest (or highest)
// round-trip time. Nodes without a measurement rank after measured ones for
// the closest pick and before them for the furthest, then by name.
func (s *Scope) byRTT(ms []Member, exclude []string, furthest bool) *Member {
	rtt := s.n.cfg.RTT
	best := ""
	var bestRTT time.Duration
	bestKnown := false
	better := func(node string, d time.Duration, known bool) bool {
		if best == "" {
			return true
		}
		if known != bestKnown {
			return known != furthest
		}
		if known && d != bestRTT {
			return (d < bestRTT) != furthest
		}
		return node < best
	}
	for i := range ms {
		node := ms[i].Node
		if node == best || slices.Contains(exclude, ms[i].ID) {
			continue
		}
		var d time.Duration
		known := false
		if rtt != nil {
			d, known = rtt(node)
		}
		if better(node, d, known) {
			best, bestRTT, bestKnown = node, d, known
		}
	}
	if best == "" {
		return nil
	}
	// Spread load over the chosen node's members.
	weight := 0
	for i := range ms {
		if ms[i].Node == best && !slices.Contains(exclude, ms[i].ID) {
			weight += int(ms[i].Count)
		}
	}
	r := rand.IntN(weight)
	for i := range ms {
		if ms[i].Node != best || slices.Contains(exclude, ms[i].ID) {
			continue
		}
		if r < int(ms[i].Count) {
			return &ms[i]
		}
		r -= int(ms[i].Count)
	}
	return nil
}

// byAge returns the oldest (or newest) eligible member. Each half of the
// snapshot is ordered by age, so it compares the first eligible member of
// each half.
func byAge(snap *snapshot, exclude []string, newest bool) *Member {
	first := func(ms []Member) *Member {
		for i := range ms {
			j := i
			if newest {
				j = len(ms) - 1 - i
			}
			if !slices.Contains(exclude, ms[j].ID) {
				return &ms[j]
			}
		}
		return nil
	}
	a, b := first(snap.localMembers()), first(snap.remoteMembers())
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case (compareAge(a, b) < 0) != newest:
		return a
	default:
		return b
	}
}
