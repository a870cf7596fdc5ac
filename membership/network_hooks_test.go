package membership

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// cuttableNetwork is a test network under the hooks of NodeConfig: it
// records what went through it, and once cut it loses every memberlist
// packet and refuses every overlay dial.
type cuttableNetwork struct {
	cut     atomic.Bool
	packets atomic.Int64

	mu      sync.Mutex
	listens []string
	dials   []string
	conns   []net.Conn
}

func (c *cuttableNetwork) hook(cfg *NodeConfig) {
	cfg.Listen = func(addr string) (net.Listener, error) {
		c.mu.Lock()
		c.listens = append(c.listens, addr)
		c.mu.Unlock()
		return net.Listen("tcp", addr)
	}
	cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		c.mu.Lock()
		c.dials = append(c.dials, addr)
		c.mu.Unlock()
		if c.cut.Load() {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
		}
		return conn, err
	}
	cfg.WrapGossipTransport = func(t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		return &cuttableGossip{NodeAwareTransport: t, net: c}
	}
}

type cuttableGossip struct {
	memberlist.NodeAwareTransport
	net *cuttableNetwork
}

func (g *cuttableGossip) WriteTo(b []byte, addr string) (time.Time, error) {
	g.net.packets.Add(1)
	if g.net.cut.Load() {
		return time.Now(), nil
	}
	return g.NodeAwareTransport.WriteTo(b, addr)
}

func (g *cuttableGossip) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	g.net.packets.Add(1)
	if g.net.cut.Load() {
		return time.Now(), nil
	}
	return g.NodeAwareTransport.WriteToAddress(b, addr)
}

func (g *cuttableGossip) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if g.net.cut.Load() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}
	}
	return g.NodeAwareTransport.DialAddressTimeout(addr, timeout)
}

// The overlay's listener and dials and memberlist's transport go through
// NodeConfig's hooks: a network cut there is a cut the failure detector
// and the overlay both see.
func TestNetworkHooksCarryOverlayAndGossip(t *testing.T) {
	var network cuttableNetwork
	acfg, bcfg := testNodeConfig("a"), testNodeConfig("b")
	network.hook(&acfg)
	network.hook(&bcfg)
	a, b := startNode(t, acfg), startNode(t, bcfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Join(ctx, a.GossipAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a and b linked", func() bool { return len(a.Active()) == 1 && len(b.Active()) == 1 })

	network.mu.Lock()
	listens, dials := append([]string(nil), network.listens...), append([]string(nil), network.dials...)
	network.mu.Unlock()
	if len(listens) != 2 || listens[0] != "127.0.0.1:0" {
		t.Errorf("Listen got %v, want BindAddr of each node", listens)
	}
	if len(dials) == 0 || (dials[0] != a.Self().Addr && dials[0] != b.Self().Addr) {
		t.Errorf("Dial got %v, want an overlay address of a or b", dials)
	}
	waitFor(t, 5*time.Second, "memberlist probes through the wrapped transport", func() bool { return network.packets.Load() > 0 })

	// Cut the network, and end the links as a failed network would.
	network.cut.Store(true)
	network.mu.Lock()
	for _, c := range network.conns {
		c.Close()
	}
	network.mu.Unlock()
	waitFor(t, 10*time.Second, "a declares b dead, and has no link to it", func() bool {
		for _, m := range a.Members() {
			if m.Name == "b" {
				return m.Status == StatusDead && len(a.Active()) == 0
			}
		}
		return false
	})
}
