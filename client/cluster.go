package client

import (
	"context"
)

// Node is a cluster node as the agent's failure detector knows it.
type Node struct {
	Name string `json:"name"`
	// Status is alive, suspect, dead or left.
	Status      string `json:"status"`
	Incarnation uint64 `json:"incarnation"`
	// RTTms is the measured round trip to it in milliseconds, 0 when
	// unknown.
	RTTms float64 `json:"rtt_ms"`
	// Addr, Gossip and HTTP are its overlay, failure detector and API
	// addresses.
	Addr   string `json:"addr"`
	Gossip string `json:"gossip"`
	HTTP   string `json:"http,omitempty"`
}

// Nodes lists the cluster's nodes, the agent's own included and the dead
// and left too; an agent on its own lists none.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out struct {
		Nodes []Node `json:"nodes"`
	}
	err := c.do(ctx, "GET", "/v1/nodes", nil, nil, &out)
	return out.Nodes, err
}

// Peer is a node the overlay links to.
type Peer struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// Overlay is an agent's view of the overlay.
type Overlay struct {
	// Name is the agent's node name.
	Name string `json:"name"`
	// Active are the peers it holds links to; Passive those it would
	// replace a lost link with.
	Active  []Peer `json:"active"`
	Passive []Peer `json:"passive"`
	// Eager and Lazy name the broadcast tree's peers for this node's own
	// changes: those a change is pushed to, and those that only hear of
	// it.
	Eager []string `json:"eager"`
	Lazy  []string `json:"lazy"`
}

// Overlay returns the agent's overlay views.
func (c *Client) Overlay(ctx context.Context) (Overlay, error) {
	var out Overlay
	err := c.do(ctx, "GET", "/v1/overlay", nil, nil, &out)
	return out, err
}

// Ready returns nil when the agent is ready to serve (its data is loaded
// and it joined its cluster or runs alone); an error matching
// ErrUnavailable while it starts or shuts down.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, "GET", "/readyz", nil, nil, nil)
}

// Live returns nil when the agent's process answers at all.
func (c *Client) Live(ctx context.Context) error {
	return c.do(ctx, "GET", "/livez", nil, nil, nil)
}
