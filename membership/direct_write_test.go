package membership

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// primaryLink returns n's link to peer.
func primaryLink(t *testing.T, n *Node, peer string) *link {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.links[peer]
	if l == nil {
		t.Fatalf("%s has no link to %s", n.self.Name, peer)
	}
	return l
}

// TestLoneSendIsWrittenByTheSender: on an idle link, Send writes the
// payload to the socket itself rather than waking the link's writer.
func TestLoneSendIsWrittenByTheSender(t *testing.T) {
	a, b := joinPair(t)
	l := primaryLink(t, a, "b")
	waitFor(t, 5*time.Second, "the link to b never went idle", func() bool { return l.unwritten.Load() == 0 })
	before := l.directWrites.Load()
	if err := a.Send("b", []byte("lone")); err != nil {
		t.Fatal(err)
	}
	if got := l.directWrites.Load() - before; got != 1 {
		t.Fatalf("%d payloads written by the sender, want 1", got)
	}
	ev := nextEvent(t, b, Message, 5*time.Second)
	if string(ev.Payload) != "lone" {
		t.Fatalf("b received %q", ev.Payload)
	}
}

// TestSendersAndWriterKeepEachSendersOrder: four goroutines send payloads
// of mixed sizes over one link whose socket buffers are a few kilobytes,
// so that senders' own writes are cut short (the writer finishes them),
// find the socket full (the frame is queued) or find the writer busy.
// b must receive every payload Send accepted, each sender's in the order
// sent, and the link must stay up: a frame written in two parts by two
// goroutines, or credit counted wrongly, would break it.
func TestSendersAndWriterKeepEachSendersOrder(t *testing.T) {
	a, b := joinPair(t)
	l := primaryLink(t, a, "b")
	l.mu.Lock()
	conn := l.conn
	l.mu.Unlock()
	if err := conn.(*net.TCPConn).SetWriteBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	const senders, each = 4, 1500
	received := make(chan [2]uint32, senders*each)
	go func() {
		for ev := range b.Events() {
			if ev.Type == Message {
				received <- [2]uint32{binary.BigEndian.Uint32(ev.Payload), binary.BigEndian.Uint32(ev.Payload[4:])}
			}
		}
	}()
	accepted := make([]int, senders)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				size := 16
				if i%7 == 0 {
					size = 40 << 10
				}
				switch {
				case i%100 == 50:
					time.Sleep(3 * time.Millisecond) // the writer drains and goes idle
				case i%10 == 0:
					time.Sleep(200 * time.Microsecond)
				}
				p := make([]byte, size)
				binary.BigEndian.PutUint32(p, uint32(s))
				binary.BigEndian.PutUint32(p[4:], uint32(accepted[s]))
				err := a.Send("b", p)
				if errors.Is(err, ErrQueueFull) {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					t.Errorf("sender %d, payload %d: %v", s, i, err)
					return
				}
				accepted[s]++
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range accepted {
		total += n
	}
	next := make([]uint32, senders)
	deadline := time.After(20 * time.Second * testTimeScale)
	for got := 0; got < total; got++ {
		select {
		case r := <-received:
			if r[0] >= senders || r[1] != next[r[0]] {
				t.Fatalf("received payload %d of sender %d, want %d", r[1], r[0], next[r[0]])
			}
			next[r[0]]++
		case <-deadline:
			t.Fatalf("b received %d of the %d payloads Send accepted", got, total)
		}
	}
	if !containsPeer(a.Active(), "b") {
		t.Fatal("the link to b went down")
	}
	// A count that did not come back to zero would stop senders writing
	// for the link's whole life.
	waitFor(t, 5*time.Second, "frames still counted as unwritten once all arrived", func() bool { return l.unwritten.Load() == 0 })
	direct, partial := l.directWrites.Load(), l.partialWrites.Load()
	t.Logf("%d payloads: %d written by their senders, %d of them finished by the writer", total, direct, partial)
	if direct == 0 || direct == uint64(total) || partial == 0 {
		t.Fatalf("the paths were not all taken: %d direct writes, %d partial, of %d payloads", direct, partial, total)
	}
}
