package membership

import (
	"runtime"
	"testing"
	"time"

	"github.com/cpggo/cpg/internal/wire"
	"github.com/cpggo/cpg/membership/hyparview"
)

// TestTransientSendsAreBounded: a burst of transient sends to a hung peer
// (it accepts connections and never answers) holds at most
// maxTransientSends goroutines and connections; the rest fail at once.
func TestTransientSendsAreBounded(t *testing.T) {
	n := startNode(t, testNodeConfig("a"))
	ln, accepted := muteListener(t)
	typ, body := hyparview.EncodeMessage(hyparview.MsgNeighbor{High: true, Epoch: 1})
	frame := wire.AppendFrame(nil, typ, body)
	before := runtime.NumGoroutine()
	const burst = 200
	for range burst {
		n.sendTransient(Peer{Name: "hung", Addr: ln.Addr().String()}, frame)
	}
	time.Sleep(300 * time.Millisecond) // every send that was started has dialed
	grew := runtime.NumGoroutine() - before
	t.Logf("%d transient sends to a hung peer: %d connections opened, %d more goroutines", burst, accepted.Load(), grew)
	// A little slack for memberlist's own goroutines coming and going.
	if grew > maxTransientSends+8 {
		t.Fatalf("%d goroutines more after %d sends, want at most about %d", grew, burst, maxTransientSends)
	}
	if got := accepted.Load(); got > maxTransientSends {
		t.Fatalf("%d connections opened, want at most %d", got, maxTransientSends)
	}
}

// TestTransientSendOverTheCapFails: past the cap, sendTransient sends
// nothing and says so, and the caller reports a failed send.
func TestTransientSendOverTheCapFails(t *testing.T) {
	n := &Node{transients: make(chan struct{}, 1)}
	n.transients <- struct{}{}
	if n.sendTransient(Peer{Name: "x", Addr: "127.0.0.1:1"}, nil) {
		t.Fatal("a transient send past the cap was started")
	}
}
