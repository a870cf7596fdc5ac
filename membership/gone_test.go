package membership

import (
	"context"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A crashed peer's process is known gone as soon as its link closes and
// its port refuses a new connection: the status stream says so, marked
// Certain, long before memberlist's probes could.
func TestCrashedPeerIsCertainlyGone(t *testing.T) {
	a, b := joinPair(t)
	for len(a.Statuses()) > 0 {
		<-a.Statuses()
	}
	crashed := time.Now()
	b.shutdown(false)
	deadline := time.After(testTimeScale * 2 * time.Second)
	for {
		select {
		case ev := <-a.Statuses():
			if ev.Name != "b" || ev.Status != StatusDead {
				continue
			}
			if !ev.Certain {
				t.Fatalf("b ruled dead by memberlist first (after %v), not by its closed port", time.Since(crashed))
			}
			t.Logf("b certainly gone %v after its crash", time.Since(crashed))
			return
		case <-deadline:
			t.Fatal("no dead status for b within 2s of its crash")
		}
	}
}

// A peer ruled gone on this node's own evidence comes back alive on fresh
// evidence of life (a new overlay link), without waiting for memberlist.
func TestCertainlyGoneIsOverturnedByALink(t *testing.T) {
	tbl := newStatusTable()
	tbl.set(NodeInfo{Name: "b", Status: StatusAlive})
	tbl.confirmGone("b")
	if info, _ := tbl.get("b"); info.Status != StatusDead {
		t.Fatalf("b is %v after confirmGone, want dead", info.Status)
	}
	tbl.clearSuspicion("b", time.Millisecond)
	if info, _ := tbl.get("b"); info.Status != StatusAlive {
		t.Fatalf("b is %v after a new link, want alive", info.Status)
	}
	tbl.set(NodeInfo{Name: "b", Status: StatusDead})
	tbl.clearSuspicion("b", time.Millisecond)
	if info, _ := tbl.get("b"); info.Status != StatusDead {
		t.Fatalf("memberlist's dead verdict was overturned by a link event: %v", info.Status)
	}
}

// A process killed with SIGKILL closes its sockets one by one: its links
// can close while its listener still completes handshakes, so the first
// confirming dial may be accepted by a process that is going. The node
// dials again a moment later and still finds it gone.
func TestPeerWhoseListenerClosesJustAfterTheFirstDialIsGone(t *testing.T) {
	a, _ := joinPair(t)
	for len(a.Statuses()) > 0 {
		<-a.Statuses()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		// The dying process's listener: one handshake, then gone.
		if conn, err := ln.Accept(); err == nil {
			conn.Close()
		}
		ln.Close()
	}()
	a.confirmGone(Peer{Name: "b", Addr: ln.Addr().String()})
	if !certainlyGoneSoon(a, "b") {
		t.Fatal("b not found gone: the accepted first dial was taken as proof of life")
	}
}

// certainlyGoneSoon reports whether n's status stream says, within a
// couple of seconds, that peer is certainly gone.
func certainlyGoneSoon(n *Node, peer string) bool {
	deadline := time.After(testTimeScale * 2 * time.Second)
	for {
		select {
		case ev := <-n.Statuses():
			if ev.Name == peer && ev.Status == StatusDead && ev.Certain {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// A confirming dial to a process being killed can fail otherwise than by
// refusal (its listener completed the handshake and was then torn down,
// resetting the connection): that proves nothing either way, so the node
// dials again instead of giving up and leaving the verdict to memberlist's
// probes, seconds later.
func TestPeerWhoseConfirmingDialIsResetIsDialedAgain(t *testing.T) {
	const goneAddr = "127.0.0.1:1" // answered by the Dial below, never dialed
	var dials atomic.Int32
	cfg := testNodeConfig("a")
	cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		if addr != goneAddr {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
		errno := syscall.ECONNREFUSED
		if dials.Add(1) == 1 {
			errno = syscall.ECONNRESET
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	a := startNode(t, cfg)
	b := startNode(t, testNodeConfig("b"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Join(ctx, a.GossipAddr()); err != nil {
		t.Fatalf("join: %v", err)
	}
	for len(a.Statuses()) > 0 {
		<-a.Statuses()
	}
	a.confirmGone(Peer{Name: "b", Addr: goneAddr})
	if !certainlyGoneSoon(a, "b") {
		t.Fatalf("b not found gone after %d dials: a reset dial ended the probing", dials.Load())
	}
}
