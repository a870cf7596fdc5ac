package membership

import (
	"sync"
	"testing"
	"time"
)

// A refute re-advertises this node (SetIncarnation: memberlist's
// UpdateNode rewrites its record of the local node under its lock) while
// a caller reads GossipAddr, as a cluster does when it hands a node that
// just started to the next one to join through. Under -race this fails if
// GossipAddr reads that record.
func TestGossipAddrWhileReadvertising(t *testing.T) {
	n := startNode(t, testNodeConfig("a"))
	want := n.GossipAddr()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if got := n.GossipAddr(); got != want {
				t.Errorf("GossipAddr while re-advertising: %q, want %q", got, want)
				return
			}
		}
	})
	for range 50 {
		n.gossip.announce()
	}
	close(stop)
	wg.Wait()
}

// Refutes in quick succession put several re-advertisements in flight, and
// Close's leave may start while they are: memberlist's UpdateNode reads
// its record of the local node outside its lock, so two of them at once
// race (-race fails this test if they may run together).
func TestReadvertisingConcurrentlyAndLeaving(t *testing.T) {
	// A few nodes: each round catches the overlap about every other time.
	for range 5 {
		n := startNode(t, testNodeConfig("a"))
		for inc := uint64(2); inc < 200; inc++ {
			n.SetIncarnation(inc)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A refute during Close may re-advertise the node after its leave:
// memberlist drops that update, so waiting for it to go out would hold
// Close for the whole leave timeout.
func TestAnnounceAfterLeaveReturnsAtOnce(t *testing.T) {
	_, b := joinPair(t)
	b.gossip.leave()
	b.SetIncarnation(7)
	start := time.Now()
	b.gossip.announce()
	if took := time.Since(start); took >= b.gossip.leaveT/2 {
		t.Fatalf("a re-advertisement after the leave took %v (leave timeout %v)", took, b.gossip.leaveT)
	}
}
