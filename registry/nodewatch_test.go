package registry

import (
	"testing"

	"github.com/cpggo/cpg/membership"
	"github.com/stretchr/testify/require"
)

func TestNodeEventsNameTheStatusChange(t *testing.T) {
	for _, c := range []struct {
		previous, status membership.NodeStatus
		want             NodeEventKind
	}{
		{0, membership.StatusAlive, NodeUp},
		{membership.StatusDead, membership.StatusAlive, NodeUp},
		{membership.StatusLeft, membership.StatusAlive, NodeUp},
		{membership.StatusSuspect, membership.StatusAlive, NodeRefuted},
		{membership.StatusAlive, membership.StatusSuspect, NodeSuspect},
		{membership.StatusSuspect, membership.StatusDead, NodeDead},
		{membership.StatusAlive, membership.StatusLeft, NodeLeft},
	} {
		ev := membership.StatusEvent{NodeInfo: membership.NodeInfo{Name: "x", Status: c.status}, Previous: c.previous}
		require.Equal(t, c.want, nodeEventOf(ev).Kind, "%v -> %v", c.previous, c.status)
	}
}

// A node watch whose reader lets its buffer fill ends with NodeOverflow;
// the others go on; closing the node ends them with ErrClosed.
func TestNodeWatchOverflowsAloneAndEndsWithTheNode(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	slow, err := n.WatchNodes(2)
	require.NoError(t, err)
	fast, err := n.WatchNodes(2)
	require.NoError(t, err)
	for _, name := range []string{"a", "b", "c"} {
		n.nodeFeed.publish(nodeEventOf(membership.StatusEvent{NodeInfo: membership.NodeInfo{Name: name, Status: membership.StatusAlive}}))
		if name != "c" {
			require.Equal(t, name, (<-fast.Events()).Node.Name)
		}
	}
	var kinds []NodeEventKind
	for ev := range slow.Events() {
		kinds = append(kinds, ev.Kind)
	}
	require.Equal(t, []NodeEventKind{NodeUp, NodeUp, NodeOverflow}, kinds)
	require.ErrorIs(t, slow.Err(), ErrWatchOverflow)
	require.Equal(t, "c", (<-fast.Events()).Node.Name)

	require.NoError(t, n.Close())
	_, open := <-fast.Events()
	require.False(t, open)
	require.ErrorIs(t, fast.Err(), ErrClosed)
	_, err = n.WatchNodes(0)
	require.ErrorIs(t, err, ErrClosed)
	slow.Close() // closing an ended watch is harmless
}
