package proctest

import (
	"context"
	"fmt"
	"time"
)

// WaitConverged waits until every one of nodes reports the same digest of
// scope, and returns how long that took.
func WaitConverged(nodes []*Node, scope string, within time.Duration) (time.Duration, error) {
	start := time.Now()
	err := waitFor(within, "equal digests", func(ctx context.Context) (bool, error) {
		return Converged(ctx, nodes, scope)
	})
	return time.Since(start), err
}

// Converged reports whether every one of nodes reports the same digest of
// scope now.
func Converged(ctx context.Context, nodes []*Node, scope string) (bool, error) {
	var first Digest
	for i, n := range nodes {
		d, err := n.Digest(ctx, scope)
		if err != nil {
			return false, err
		}
		if i == 0 {
			first = d
		} else if d != first {
			return false, nil
		}
	}
	return true, nil
}

// WaitMembers waits until every one of nodes lists exactly want members in
// scope (summed over its groups), and returns how long that took.
func WaitMembers(nodes []*Node, scope string, want int, within time.Duration) (time.Duration, error) {
	start := time.Now()
	seen := make([]int, len(nodes)) // the last count read from each node; -1 unread
	for i := range seen {
		seen[i] = -1
	}
	err := waitFor(within, "member counts", func(ctx context.Context) (bool, error) {
		for i, n := range nodes {
			d, err := n.Digest(ctx, scope)
			if err != nil {
				return false, err
			}
			seen[i] = d.Members
			if d.Members != want {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		err = fmt.Errorf("%w; want %d on each node, last read %v", err, want, seen)
	}
	return time.Since(start), err
}

// WaitStatus waits until every one of observers lists node with status.
func WaitStatus(observers []*Node, node, status string, within time.Duration) (time.Duration, error) {
	start := time.Now()
	err := waitFor(within, node+" "+status, func(ctx context.Context) (bool, error) {
		for _, o := range observers {
			st, err := o.NodeStatus(ctx)
			if err != nil || st[node] != status {
				return false, err
			}
		}
		return true, nil
	})
	return time.Since(start), err
}
