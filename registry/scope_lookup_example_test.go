package registry_test

import (
	"fmt"

	"github.com/cpggo/cpg/registry"
)

// A server answering reads looks scopes up with LookupScope, so that a
// request naming an invented scope does not create it; only a join does,
// through Scope, up to Config.MaxScopes.
func ExampleNode_LookupScope() {
	n, err := registry.New(registry.Config{Name: "n1", MaxScopes: 10})
	if err != nil {
		panic(err)
	}
	defer n.Close()

	_, found := n.LookupScope("billing")
	fmt.Println("before a join:", found)

	s, err := n.Scope("billing")
	if err != nil {
		panic(err)
	}
	if err := s.Join("/svc/invoices", "inv-1", nil); err != nil {
		panic(err)
	}
	s, found = n.LookupScope("billing")
	g, _ := s.Members("/svc/invoices")
	fmt.Println("after a join:", found, len(g.Members))
	// Output:
	// before a join: false
	// after a join: true 1
}
