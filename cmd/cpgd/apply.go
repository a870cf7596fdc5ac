package main

import (
	"context"

	"github.com/cpggo/cpg/registry"
)

// changeKind names the changes a client makes through the API.
type changeKind uint8

const (
	changeJoin changeKind = iota + 1
	changeLeave
	changeMeta // replace the member's metadata; an empty map clears it
)

// change is one registration change a client asked for.
type change struct {
	kind          changeKind
	scope         *registry.Scope
	group, member string
	meta          registry.Meta
	// lease, when not empty, is the lease a join is bound to: the member
	// leaves when the lease lapses or is revoked.
	lease string
}

// applyChange makes a client's change and returns the member's join count
// after it.
func (a *api) applyChange(_ context.Context, c change) (int, error) {
	var err error
	switch c.kind {
	case changeJoin:
		err = c.scope.Join(c.group, c.member, c.meta)
	case changeLeave:
		err = c.scope.Leave(c.group, c.member)
	case changeMeta:
		err = c.scope.SetMeta(c.group, c.member, c.meta)
	}
	if err != nil {
		return 0, err
	}
	count, _ := c.scope.JoinCount(c.group, c.member)
	return count, nil
}
