package registry

import (
	"testing"

	"github.com/cpggo/cpg/broadcast"
	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/registry/replication"
	"github.com/stretchr/testify/require"
)

// The outbox hands the broadcast the local changes in the order they were
// made, whatever their kind: ops, a tombstone this node found and this
// node's state after a refute interleave, and each batch of ops ends at
// the change that followed it. It takes what was queued once, and a take
// after it starts afresh.
func TestOutboxKeepsTheOrderOfEveryKindOfChange(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	// A broadcast that never ran: waking it does nothing.
	c := &cluster{bcast: &broadcast.Node{}}
	self, _ := n.state.Self()
	join := func(member string) crdt.Version {
		op := n.state.LocalJoin(DefaultScope, "/g", member, 1, nil, 0)
		c.queueChangeLocked(&op)
		return op.Version()
	}
	death := replication.Batch{ID: []byte("death of n9"), Payload: []byte("x")}
	state := crdt.OwnerState{Owner: self, Version: crdt.Version{Incarnation: 7, Seq: 1}}

	n.mu.Lock()
	join("m1")
	v2 := join("m2")
	c.queueLocked(outgoing{death: &death})
	v3 := join("m3")
	c.queueLocked(outgoing{state: &state})
	c.queueLocked(outgoing{death: &death})
	join("m4")
	v5 := join("m5")
	n.mu.Unlock()

	ids := func() []string {
		var out []string
		for _, m := range n.takeOutbox(c) {
			require.Equal(t, replication.Topic, m.Topic)
			out = append(out, string(m.ID))
		}
		return out
	}
	id := func(v crdt.Version) string { return string(replication.MessageID(self, v)) }
	require.Equal(t, []string{
		id(v2), string(death.ID), id(v3), id(state.Version), string(death.ID), id(v5),
	}, ids())
	require.Empty(t, ids(), "a second take found changes the first had taken")

	n.mu.Lock()
	v6 := join("m6")
	n.mu.Unlock()
	require.Equal(t, []string{id(v6)}, ids())
}
