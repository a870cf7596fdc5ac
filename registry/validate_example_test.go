package registry_test

import (
	"errors"
	"fmt"

	"github.com/cpggo/cpg/registry"
)

// A caller that records changes before making them checks them first, so
// bad input never reaches its log.
func ExampleValidateChange() {
	fmt.Println(registry.ValidateChange("/svc/db", "db-1", registry.Meta{"zone": "eu"}))
	err := registry.ValidateChange("/svc/**", "db-1", nil)
	fmt.Println(errors.Is(err, registry.ErrInvalidName))
	err = registry.ValidateChange("/svc/db", "", nil)
	fmt.Println(errors.Is(err, registry.ErrInvalidMember))
	// Output:
	// <nil>
	// true
	// true
}
