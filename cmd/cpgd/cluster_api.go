package main

import (
	"fmt"
	"net/http"

	"github.com/cpggo/cpg/membership"
)

// digest answers with what must be equal on every converged node: the
// fingerprint of the replica's digest (every scope) and the scope's group
// and member counts.
func (a *api) digest(w http.ResponseWriter, r *http.Request) {
	if !readQueryNone(w, r) {
		return
	}
	s, ok := a.scope(w, r)
	if !ok {
		return
	}
	sum := a.node.Summary()
	groups, members := s.Size()
	writeJSON(w, http.StatusOK, map[string]any{
		"digest":  fmt.Sprintf("%016x-%d", sum.Hash, sum.Lines),
		"groups":  groups,
		"members": members,
	})
}

// nodeJSON is a cluster node as the API shows it.
type nodeJSON struct {
	Name        string  `json:"name"`
	Status      string  `json:"status"`
	Incarnation uint64  `json:"incarnation"`
	RTTms       float64 `json:"rtt_ms"`
	Addr        string  `json:"addr"`
	Gossip      string  `json:"gossip"`
	HTTP        string  `json:"http,omitempty"`
}

// nodes lists the cluster's nodes as this node's failure detector knows
// them, itself included; a node on its own lists none.
func (a *api) nodes(w http.ResponseWriter, r *http.Request) {
	if !readQueryNone(w, r) {
		return
	}
	infos := a.node.Nodes()
	out := make([]nodeJSON, 0, len(infos))
	for _, n := range infos {
		out = append(out, nodeJSON{
			Name: n.Name, Status: n.Status.String(), Incarnation: n.Incarnation,
			RTTms: float64(n.RTT.Microseconds()) / 1000, Addr: n.Addr, Gossip: n.GossipAddr, HTTP: n.HTTPAddr,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": out})
}

type peerJSON struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

func peersJSON(peers []membership.Peer) []peerJSON {
	out := make([]peerJSON, 0, len(peers))
	for _, p := range peers {
		out = append(out, peerJSON{Name: p.Name, Addr: p.Addr})
	}
	return out
}

// overlay shows this node's HyParView views (the active peers it holds
// links to, and the passive ones it would replace a lost link with) and
// the eager and lazy peers of the broadcast tree its own changes go down.
// It names the node too, so a client behind a proxy (the status page)
// knows which node it talks to.
func (a *api) overlay(w http.ResponseWriter, r *http.Request) {
	if !readQueryNone(w, r) {
		return
	}
	o := a.node.Overlay()
	writeJSON(w, http.StatusOK, map[string]any{
		"name":   a.node.Name(),
		"active": peersJSON(o.Active), "passive": peersJSON(o.Passive),
		"eager": nonNil(o.Eager), "lazy": nonNil(o.Lazy),
	})
}
