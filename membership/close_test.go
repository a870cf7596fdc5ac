package membership

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cpggo/cpg/internal/wire"
	"github.com/cpggo/cpg/membership/hyparview"
)

// muteListener accepts TCP connections and never says a word: a peer whose
// process hangs, as a dialer sees it (connect succeeds, the handshake
// waits for its timeout). It counts the connections it accepted.
func muteListener(t *testing.T) (net.Listener, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := new(atomic.Int64)
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			held = append(held, c)
		}
	}()
	return ln, accepted
}

// TestCloseIsPrompt: a node with live links, a consumer that stopped
// reading, a transient send stuck in its handshake with a hung peer and an
// inbound connection that never finishes its handshake must still close
// within a second: Close cuts what would otherwise wait out its timeouts.
func TestCloseIsPrompt(t *testing.T) {
	a, b := joinPair(t) // nobody reads a's events
	for range 512 {
		_ = b.Send("a", make([]byte, 1024))
	}
	mute, _ := muteListener(t)
	typ, body := hyparview.EncodeMessage(hyparview.MsgNeighbor{High: true, Epoch: 1})
	a.sendTransient(Peer{Name: "hung", Addr: mute.Addr().String()}, wire.AppendFrame(nil, typ, body))
	silent, err := net.Dial("tcp", a.Self().Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	time.Sleep(200 * time.Millisecond) // the send and the handshake are under way

	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("Close of a node with a live link, a stalled consumer, a hung transient send and a silent inbound connection took %v", took)
	if took > time.Second*testTimeScale {
		t.Fatalf("Close took %v, want under %v", took, time.Second*testTimeScale)
	}
}
