package hyparview

// Peer identifies a node of the overlay. Name is unique in the cluster and is
// the node's identity; Addr is where its overlay listener accepts
// connections. The protocol core treats Addr as opaque (the simulator leaves
// it empty); only the driver dials it.
type Peer struct {
	Name string
	Addr string
}

func (p Peer) String() string {
	if p.Addr == "" {
		return p.Name
	}
	return p.Name + "@" + p.Addr
}
