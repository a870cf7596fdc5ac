package proctest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cpggo/cpg/internal/proctest"
)

// Five cpgd processes, each in a network namespace of its own: one is cut
// off, the cut heals, and the digests say when the five agree again.
func Example() {
	c, err := proctest.Start(proctest.Config{Nodes: 5, Isolated: true, GossipProfile: "loopback"})
	if err != nil {
		log.Fatal(err) // proctest.ErrNoNamespaces where the host cannot isolate nodes
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Nodes[0].Join(ctx, "default", "/svc/db", "db-1"); err != nil {
		log.Fatal(err)
	}
	if err := c.Partition([]int{0}, []int{1, 2, 3, 4}); err != nil {
		log.Fatal(err)
	}
	if err := c.Nodes[4].Join(ctx, "default", "/svc/db", "db-2"); err != nil {
		log.Fatal(err)
	}
	if err := c.Heal(); err != nil {
		log.Fatal(err)
	}
	took, err := proctest.WaitConverged(c.Nodes, "default", 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("converged after", took)
}
