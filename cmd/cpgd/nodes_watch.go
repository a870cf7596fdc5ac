package main

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/cpggo/cpg/membership"
	"github.com/cpggo/cpg/registry"
)

// nodeWatchBuffer is how many status changes may wait for a slow node
// stream before it overflows: changes are rare, a burst is a partition.
const nodeWatchBuffer = 256

// watchNodes streams the status changes of the cluster's nodes, Pulse's
// failure notifications: one "node" event per node known now, "synced",
// then up, suspect, dead, refuted and left as they happen (docs/API.md).
func (a *api) watchNodes(w http.ResponseWriter, r *http.Request) {
	if !readQueryNone(w, r) {
		return
	}
	release, ok := a.watches.admit(w, r)
	if !ok {
		return
	}
	defer release()
	nw, err := a.node.WatchNodes(nodeWatchBuffer)
	if err != nil {
		writeError(w, err)
		return
	}
	defer nw.Close()

	stream := openStream(w, r, a.watches.cfg.writeTimeout, a.watches)
	defer stream.end()
	stream.deadline()
	for _, n := range nw.Nodes() {
		stream.event("", "node", nodeEventData(n))
	}
	stream.event("", "synced", []byte("{}"))
	if stream.flush() != nil {
		return
	}
	heartbeat := time.NewTicker(a.watches.cfg.heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-stream.closed():
			return
		case <-heartbeat.C:
			if stream.heartbeat() != nil {
				return
			}
		case ev, open := <-nw.Events():
			stream.deadline()
			switch {
			case !open && nw.Err() == nil:
				return
			case !open:
				stream.event("", "closed", []byte("{}"))
			case ev.Kind == registry.NodeOverflow:
				stream.event("", "overflow", errorEvent("the stream fell behind the node status changes; read /v1/nodes again, or watch again"))
			default:
				stream.event("", ev.Kind.String(), nodeEventData(ev.Node))
			}
			if stream.flush() != nil || !open || ev.Kind == registry.NodeOverflow {
				return
			}
		}
	}
}

// nodeEventData is a node as GET /v1/nodes lists it.
func nodeEventData(n membership.NodeInfo) []byte {
	b, _ := json.Marshal(nodeJSON{
		Name: n.Name, Status: n.Status.String(), Incarnation: n.Incarnation,
		RTTms: float64(n.RTT.Microseconds()) / 1000, Addr: n.Addr, Gossip: n.GossipAddr, HTTP: n.HTTPAddr,
	})
	return b
}
