// Embedded: a cluster of two registry nodes inside one Go process, as two
// services would each embed one. A service joins a group on both nodes;
// the closest pick on the first node prefers its own member, and moves to
// the other node's once the local one leaves. Run it with
//
//	go run ./examples/embedded
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/cpggo/cpg/membership"
	"github.com/cpggo/cpg/registry"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

const group = "/svc/api"

func run(ctx context.Context, out io.Writer) error {
	// Every node of a cluster shares its key: it authenticates the overlay's
	// links and encrypts the failure detector's gossip.
	key := make([]byte, 32)
	rand.Read(key)
	cluster := func(join ...string) *registry.ClusterConfig {
		return &registry.ClusterConfig{
			Bind: "127.0.0.1:0", Gossip: "127.0.0.1:0", Join: join, Key: key,
			// One host: probes and suspicion an order of magnitude
			// shorter than on a LAN.
			Membership: membership.NodeConfig{Gossip: membership.LoopbackGossipConfig()},
		}
	}

	a, err := registry.New(registry.Config{Name: "node-a", Cluster: cluster()})
	if err != nil {
		return err
	}
	defer a.Close()
	// The second node joins the cluster through the first one's failure
	// detector address.
	b, err := registry.New(registry.Config{Name: "node-b", Cluster: cluster(a.GossipAddr())})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(out, "node-a and node-b form a cluster (node-b joined through %s)\n", a.GossipAddr())

	// Watch the group on node-a before anything joins, to see node-b's
	// join arrive.
	watch, err := a.Default().Watch(group, 0)
	if err != nil {
		return err
	}
	defer watch.Close()

	if err := a.Default().Join(group, "api-a", registry.Meta{"addr": "10.0.0.1:8080"}); err != nil {
		return err
	}
	fmt.Fprintln(out, "api-a joins", group, "on node-a")
	if err := b.Default().Join(group, "api-b", registry.Meta{"addr": "10.0.0.2:8080"}); err != nil {
		return err
	}
	fmt.Fprintln(out, "api-b joins", group, "on node-b")

	// node-b's join reaches node-a over the cluster.
	if err := waitFor(ctx, watch, registry.EventJoin, "api-b"); err != nil {
		return err
	}
	g, err := a.Default().Members(group)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "node-a sees %d members of %s:\n", len(g.Members), g.Name)
	for _, m := range g.Members {
		fmt.Fprintf(out, "  %s on %s at %s\n", m.ID, m.Node, m.Meta["addr"])
	}

	// Closest: this node's own member first, else the remote member of
	// the node with the shortest round trip.
	_, m, err := a.Default().Pick(group, registry.Closest)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "closest pick on node-a: %s (on %s)\n", m.ID, m.Node)

	if err := a.Default().Leave(group, "api-a"); err != nil {
		return err
	}
	fmt.Fprintln(out, "api-a leaves", group)
	_, m, err = a.Default().Pick(group, registry.Closest)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "closest pick on node-a: %s (on %s)\n", m.ID, m.Node)
	return nil
}

// waitFor reads the watch until the member's event of that kind arrives.
func waitFor(ctx context.Context, w *registry.Watch, kind registry.EventKind, member string) error {
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				return fmt.Errorf("the watch ended: %w", w.Err())
			}
			if ev.Kind == kind && ev.Member.ID == member {
				return nil
			}
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("no %s of %s arrived", kind, member), ctx.Err())
		}
	}
}
