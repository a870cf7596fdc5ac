package registry

import "context"

// binding ties one join to a context: Go's stand-in for a monitored
// process. context.AfterFunc starts no goroutine until the context ends.
type binding struct {
	stop func() bool
}

// JoinContext joins like Join and takes that join back when ctx ends
// (cancelled or past its deadline), as a monitored process leaves its groups
// when it exits. If the member has already left by then, nothing happens.
// A context that has already ended joins nothing and returns its error.
func (s *Scope) JoinContext(ctx context.Context, group, member string, meta Meta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.Join(group, member, meta); err != nil {
		return err
	}
	n := s.n
	b := &binding{}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	b.stop = context.AfterFunc(ctx, func() {
		n.mu.Lock()
		_, live := n.bindings[b]
		delete(n.bindings, b)
		n.mu.Unlock()
		if live {
			// ErrNotMember here means the member already left: nothing to undo.
			_ = s.Leave(group, member)
		}
	})
	n.bindings[b] = struct{}{}
	return nil
}
