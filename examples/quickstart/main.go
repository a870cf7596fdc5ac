// Quickstart: one registry node, a few services joining groups, and the
// lookups, picks and watches a client makes. Run it with
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cpggo/cpg/registry"
)

func main() {
	node, err := registry.New(registry.Config{Name: "node-1"})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	scope := node.Default()

	// Watch every group under /svc/ before anything joins.
	watch, err := scope.Watch("/svc/*", 64)
	if err != nil {
		log.Fatal(err)
	}
	defer watch.Close()

	// Two database replicas with their addresses as metadata, and a
	// catch-all pattern group for anything else under /svc/.
	must(scope.Join("/svc/db/eu", "db-1", registry.Meta{"addr": "10.0.0.7:5432"}))
	must(scope.Join("/svc/db/eu", "db-2", registry.Meta{"addr": "10.0.0.8:5432"}))
	must(scope.Join("/svc/*", "gateway", nil))

	// A worker that stays registered only while its context lives.
	ctx, stopWorker := context.WithCancel(context.Background())
	must(scope.JoinContext(ctx, "/svc/jobs", "worker-1", nil))

	g, err := scope.Members("/svc/db/eu")
	must(err)
	fmt.Printf("members of %s:\n", g.Name)
	for _, m := range g.Members {
		fmt.Printf("  %s on %s at %s\n", m.ID, m.Node, m.Meta["addr"])
	}

	// A name nobody joined falls to the most specific pattern.
	g, err = scope.Members("/svc/cache/us")
	must(err)
	fmt.Printf("/svc/cache/us is served by group %s: %s\n", g.Name, g.Members[0].ID)

	_, m, err := scope.Pick("/svc/db/eu", registry.Random)
	must(err)
	fmt.Println("random pick:", m.ID)
	_, m, err = scope.Pick("/svc/db/eu", registry.Oldest, "db-1")
	must(err)
	fmt.Println("oldest pick except db-1:", m.ID)

	stopWorker()
	for {
		select {
		case ev := <-watch.Events():
			fmt.Printf("watch: %s %s %s (count %d)\n", ev.Kind, ev.Group, ev.Member.ID, ev.Member.Count)
			if ev.Kind == registry.EventLeave && ev.Member.ID == "worker-1" {
				return
			}
		case <-time.After(time.Second):
			log.Fatal("the worker's leave never arrived")
		}
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
