package registry_test

import (
	"fmt"

	"github.com/cpggo/cpg/registry"
)

func ExampleNode_Stats() {
	node, _ := registry.New(registry.Config{Name: "node-1"})
	defer node.Close()
	_ = node.Default().Join("/svc/db", "db-1", nil)
	_ = node.Default().Join("/svc/web", "web-1", nil)
	_ = node.Default().Leave("/svc/web", "web-1")

	st := node.Stats()
	for _, s := range st.Scopes {
		fmt.Printf("scope %s: %d groups, %d members\n", s.Name, s.Groups, s.Members)
	}
	fmt.Printf("local changes: %d joins, %d leaves\n", st.Local.Joins, st.Local.Leaves)
	// Output:
	// scope default: 1 groups, 1 members
	// local changes: 2 joins, 1 leaves
}
