package registry_test

import (
	"context"
	"fmt"

	"github.com/cpggo/cpg/registry"
)

func Example() {
	node, _ := registry.New(registry.Config{Name: "node-1"})
	defer node.Close()
	scope := node.Default()

	_ = scope.Join("/svc/db/eu", "db-1", registry.Meta{"addr": "10.0.0.7:5432"})
	_ = scope.Join("/svc/db/eu", "db-2", nil)

	group, _ := scope.Members("/svc/db/eu")
	for _, m := range group.Members {
		fmt.Println(group.Name, m.ID, m.Node, m.Meta["addr"])
	}
	// Output:
	// /svc/db/eu db-1 node-1 10.0.0.7:5432
	// /svc/db/eu db-2 node-1
}

func ExampleScope_Join_counted() {
	node, _ := registry.New(registry.Config{Name: "node-1"})
	defer node.Close()
	scope := node.Default()

	// As in CPG, a member joined twice must leave twice.
	_ = scope.Join("/jobs", "worker", nil)
	_ = scope.Join("/jobs", "worker", nil)
	_ = scope.Leave("/jobs", "worker")
	count, _ := scope.JoinCount("/jobs", "worker")
	fmt.Println("count after one leave:", count)
	// Output: count after one leave: 1
}

func ExampleScope_Members_pattern() {
	node, _ := registry.New(registry.Config{Name: "node-1"})
	defer node.Close()
	scope := node.Default()

	_ = scope.Join("/svc/*", "catch-all", nil)
	_ = scope.Join("/svc/?/db", "any-region-db", nil)
	_ = scope.Join("/svc/eu/db", "eu-db", nil)

	for _, name := range []string{"/svc/eu/db", "/svc/us/db", "/svc/us/web"} {
		g, _ := scope.Members(name)
		fmt.Printf("%s -> %s %s\n", name, g.Name, g.Members[0].ID)
	}
	_, err := scope.Members("/other")
	fmt.Println(err)
	// Output:
	// /svc/eu/db -> /svc/eu/db eu-db
	// /svc/us/db -> /svc/?/db any-region-db
	// /svc/us/web -> /svc/* catch-all
	// registry: no such group: "/other" in scope "default"
}

func ExampleScope_Pick() {
	node, _ := registry.New(registry.Config{Name: "node-1"})
	defer node.Close()
	scope := node.Default()
	_ = scope.Join("/q", "first", nil)
	_ = scope.Join("/q", "second", nil)

	_, oldest, _ := scope.Pick("/q", registry.Oldest)
	_, other, _ := scope.Pick("/q", registry.Oldest, "first")
	fmt.Println(oldest.ID, other.ID)
	// Output: first second
}

func ExampleScope_Watch() {
	node, _ := registry.New(registry.Config{Name: "node-1"})
	defer node.Close()
	scope := node.Default()

	w, _ := scope.Watch("/svc/*", 16)
	defer w.Close()
	_ = scope.Join("/svc/web", "web-1", nil)
	_ = scope.Leave("/svc/web", "web-1")

	for range 2 {
		ev := <-w.Events()
		fmt.Println(ev.Kind, ev.Group, ev.Member.ID, ev.Member.Count)
	}
	// Output:
	// join /svc/web web-1 1
	// leave /svc/web web-1 0
}

func ExampleScope_JoinContext() {
	node, _ := registry.New(registry.Config{Name: "node-1"})
	defer node.Close()
	scope := node.Default()
	w, _ := scope.Watch("/workers", 16)
	defer w.Close()

	// The member stays while its context lives, like a monitored process.
	ctx, cancel := context.WithCancel(context.Background())
	_ = scope.JoinContext(ctx, "/workers", "w-1", nil)
	cancel()

	fmt.Println((<-w.Events()).Kind)
	fmt.Println((<-w.Events()).Kind)
	// Output:
	// join
	// leave
}
