package testcluster

import (
	"context"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// gossipTransport puts a node's memberlist in the network: packets across
// a partition or to or from a dead node are lost, and stream dials across
// one hang until their timeout, as they would on a real network.
type gossipTransport struct {
	memberlist.NodeAwareTransport
	nw   *network
	self string
}

func (t *gossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if !t.nw.gossipReachable(t.self, addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *gossipTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if !t.nw.gossipReachable(t.self, addr.Addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, addr)
}

func (t *gossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.dial(addr, timeout)
}

func (t *gossipTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.dial(addr.Addr, timeout)
}

func (t *gossipTransport) dial(addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return t.nw.dial(ctx, t.self, addr)
}
