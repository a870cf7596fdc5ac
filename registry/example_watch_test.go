package registry_test

import (
	"fmt"

	"github.com/cpggo/cpg/membership"
	"github.com/cpggo/cpg/registry"
)

func ExampleScope_Subscribe() {
	node, _ := registry.New(registry.Config{Name: "node-1"})
	defer node.Close()
	scope := node.Default()
	_ = scope.Join("/svc/web", "web-1", nil)

	// The members now, and every change after them: no gap, no repeat.
	sub, _ := scope.Subscribe("/svc/*", registry.SubscribeOptions{Snapshot: true})
	for _, g := range sub.Snapshot() {
		for _, m := range g.Members {
			fmt.Println("member", g.Name, m.ID)
		}
	}
	_ = scope.Join("/svc/web", "web-2", nil)
	<-sub.Ready()
	changes, _ := sub.Next(nil)
	for _, c := range changes {
		fmt.Println(c.Kind, c.Group, c.Member.ID)
	}
	last := changes[len(changes)-1].Seq
	sub.Close()

	// A reader that lost its connection resumes after the last change it
	// saw, and misses nothing made meanwhile.
	_ = scope.Leave("/svc/web", "web-1")
	again, _ := scope.Subscribe("/svc/*", registry.SubscribeOptions{Resume: true, After: last})
	defer again.Close()
	changes, _ = again.Next(nil)
	for _, c := range changes {
		fmt.Println(c.Kind, c.Group, c.Member.ID)
	}
	// Output:
	// member /svc/web web-1
	// join /svc/web web-2
	// leave /svc/web web-1
}

func ExampleNode_WatchNodes() {
	cluster := func(join ...string) *registry.ClusterConfig {
		return &registry.ClusterConfig{
			Key: []byte("0123456789abcdef"), Join: join,
			Membership: membership.NodeConfig{Gossip: membership.LoopbackGossipConfig()},
		}
	}
	a, err := registry.New(registry.Config{Name: "a", Cluster: cluster()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	w, _ := a.WatchNodes(0)
	defer w.Close()

	b, err := registry.New(registry.Config{Name: "b", Cluster: cluster(a.GossipAddr())})
	if err != nil {
		fmt.Println(err)
		return
	}
	for ev := range w.Events() {
		if ev.Node.Name == "b" && ev.Kind == registry.NodeUp {
			fmt.Println(ev.Kind, ev.Node.Name, ev.Node.Status)
			break
		}
	}
	b.Close() // b leaves: a's watch says so at once
	for ev := range w.Events() {
		if ev.Node.Name == "b" && ev.Kind == registry.NodeLeft {
			fmt.Println(ev.Kind, ev.Node.Name, ev.Node.Status)
			break
		}
	}
	// Output:
	// up b alive
	// left b left
}
