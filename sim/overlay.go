package sim

import (
	"math/rand/v2"
	"slices"
)

// Overlay describes the active-view graph of the live nodes at one moment,
// as the drivers hold it (the links each core reported up).
type Overlay struct {
	Nodes      int  // live nodes
	Components int  // connected components of the live nodes
	Largest    int  // nodes in the largest component
	Symmetric  bool // every link is held at both ends
	Asymmetric int  // links held at one end only
	DeadLinks  int  // links to nodes that are not running
	// FullViews counts nodes whose active view is full; MinDegree and
	// MaxDegree bound the active view sizes.
	FullViews            int
	MinDegree, MaxDegree int
	// InDegree[d] is the number of live nodes that d live nodes hold in
	// their active view.
	InDegree []int
	// Clustering is the average local clustering coefficient.
	Clustering float64
	// AvgShortestPath is the mean distance between connected pairs,
	// estimated by breadth-first search from PathSources random nodes.
	AvgShortestPath float64
	PathSources     int
}

// Connected reports whether the live nodes form one connected, symmetric
// overlay without links to dead nodes.
func (o Overlay) Connected() bool {
	return o.Components == 1 && o.Symmetric && o.DeadLinks == 0
}

// Overlay measures the active-view graph. pathSources bounds the BFS runs
// of the shortest-path estimate (0 skips it); the sources are drawn from a
// source seeded by Config.Seed, not the network's, so measuring does not
// change the run.
func (s *Simulator) Overlay(pathSources int) Overlay {
	o := Overlay{Symmetric: true, MinDegree: -1}
	inDeg := make([]int, len(s.nodes))
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		o.Nodes++
		d := len(n.links)
		if d >= s.cfg.HyParView.ActiveSize {
			o.FullViews++
		}
		if o.MinDegree < 0 || d < o.MinDegree {
			o.MinDegree = d
		}
		o.MaxDegree = max(o.MaxDegree, d)
		for _, p := range n.links {
			peer := s.nodes[p]
			if !peer.alive {
				o.DeadLinks++
				continue
			}
			inDeg[p]++
			if !containsLink(peer.links, n.idx) {
				o.Asymmetric++
				o.Symmetric = false
			}
		}
	}
	o.MinDegree = max(o.MinDegree, 0)
	for i, n := range s.nodes {
		if !n.alive {
			continue
		}
		for len(o.InDegree) <= inDeg[i] {
			o.InDegree = append(o.InDegree, 0)
		}
		o.InDegree[inDeg[i]]++
	}
	o.Components, o.Largest = s.components()
	o.Clustering = s.clustering()
	if pathSources > 0 {
		o.AvgShortestPath, o.PathSources = s.avgShortestPath(pathSources)
	}
	return o
}

// Connected is the cheap form of Overlay(0).Connected().
func (s *Simulator) Connected() bool {
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		for _, p := range n.links {
			peer := s.nodes[p]
			if !peer.alive || !containsLink(peer.links, n.idx) {
				return false
			}
		}
	}
	comps, _ := s.components()
	return comps == 1
}

// components counts the connected components of the live nodes (links
// taken as undirected) and the size of the largest.
func (s *Simulator) components() (count, largest int) {
	seen := make([]bool, len(s.nodes))
	var queue []int32
	for _, n := range s.nodes {
		if !n.alive || seen[n.idx] {
			continue
		}
		count++
		size := 0
		seen[n.idx] = true
		queue = append(queue[:0], n.idx)
		for len(queue) > 0 {
			u := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			size++
			for _, v := range s.nodes[u].links {
				if !seen[v] && s.nodes[v].alive {
					seen[v] = true
					queue = append(queue, v)
				}
			}
		}
		largest = max(largest, size)
	}
	return count, largest
}

// bfs returns the distances from src over live links (-1: unreachable).
func (s *Simulator) bfs(src int32, dist []int32) []int32 {
	if cap(dist) < len(s.nodes) {
		dist = make([]int32, len(s.nodes))
	}
	dist = dist[:len(s.nodes)]
	for i := range dist {
		dist[i] = -1
	}
	dist[src] = 0
	queue := []int32{src}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, v := range s.nodes[u].links {
			if dist[v] < 0 && s.nodes[v].alive {
				dist[v] = dist[u] + 1
				queue = append(queue, v)
			}
		}
	}
	return dist
}

// depthFrom is the eccentricity of src in the live overlay: the largest
// shortest-path distance to a node it can reach.
func (s *Simulator) depthFrom(src int) int {
	depth := 0
	for _, d := range s.bfs(int32(src), nil) {
		depth = max(depth, int(d))
	}
	return depth
}

func (s *Simulator) clustering() float64 {
	var sum float64
	var count int
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		count++
		nb := make([]int32, 0, len(n.links))
		for _, p := range n.links {
			if s.nodes[p].alive {
				nb = append(nb, p)
			}
		}
		if len(nb) < 2 {
			continue
		}
		edges := 0
		for i, a := range nb {
			for _, b := range nb[i+1:] {
				if containsLink(s.nodes[a].links, b) || containsLink(s.nodes[b].links, a) {
					edges++
				}
			}
		}
		sum += 2 * float64(edges) / float64(len(nb)*(len(nb)-1))
	}
	if count == 0 {
		return 0
	}
	return sum / float64(count)
}

func (s *Simulator) avgShortestPath(sources int) (float64, int) {
	live := s.LiveNodes()
	if len(live) < 2 {
		return 0, 0
	}
	r := rand.New(rand.NewPCG(s.cfg.Seed, 0x2545f4914f6cdd1d))
	picks := slices.Clone(live)
	r.Shuffle(len(picks), func(i, j int) { picks[i], picks[j] = picks[j], picks[i] })
	picks = picks[:min(sources, len(picks))]
	var total, pairs int64
	var dist []int32
	for _, src := range picks {
		dist = s.bfs(int32(src), dist)
		for i, d := range dist {
			if d > 0 && i != src {
				total += int64(d)
				pairs++
			}
		}
	}
	if pairs == 0 {
		return 0, len(picks)
	}
	return float64(total) / float64(pairs), len(picks)
}
