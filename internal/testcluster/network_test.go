package testcluster

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"
)

// connect opens a connection from node a to node b's listener through nw
// and returns both ends.
func connect(t *testing.T, nw *network, a, b string) (dialed, accepted net.Conn, ln net.Listener) {
	t.Helper()
	ln, err := nw.listen(b, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	dialed, err = nw.dial(ctx, a, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialed.Close() })
	accepted, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { accepted.Close() })
	return dialed, accepted, ln
}

// A partition holds a connection's bytes, in both directions, as a real
// one does: nothing arrives while it lasts, and everything arrives, in
// order, once it heals.
func TestPartitionHoldsBytesUntilTheHeal(t *testing.T) {
	nw := newNetwork(1)
	dialed, accepted, _ := connect(t, nw, "a", "b")
	nw.partition([][]string{{"a"}})
	for _, c := range []struct {
		from, to net.Conn
		what     string
	}{{dialed, accepted, "dialer to acceptor"}, {accepted, dialed, "acceptor to dialer"}} {
		wrote := make(chan error, 1)
		go func() { _, err := c.from.Write([]byte("hello")); wrote <- err }()
		_ = c.to.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := c.to.Read(make([]byte, 5)); n > 0 || !isTimeout(err) {
			t.Fatalf("%s: read %d bytes across the partition (err %v)", c.what, n, err)
		}
		nw.heal()
		if err := <-wrote; err != nil {
			t.Fatalf("%s: write after the heal: %v", c.what, err)
		}
		_ = c.to.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c.to, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("%s: after the heal read %q, %v", c.what, buf, err)
		}
		nw.partition([][]string{{"a"}})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A write blocked by a partition gives up at the connection's write
// deadline, and a dial across it at its context's, as on a real network.
func TestPartitionedWritesAndDialsTimeOut(t *testing.T) {
	nw := newNetwork(1)
	dialed, _, ln := connect(t, nw, "a", "b")
	nw.partition([][]string{{"a"}})
	_ = dialed.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := dialed.Write([]byte("x")); !isTimeout(err) {
		t.Fatalf("write across the partition: %v, want a timeout", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := nw.dial(ctx, "a", ln.Addr().String()); err == nil {
		t.Fatal("a dial across the partition succeeded")
	}
}

// A killed node's sockets close as its kernel would close them: its peers
// read the end of the stream, and a dial to its port is refused.
func TestKilledNodeClosesItsSockets(t *testing.T) {
	nw := newNetwork(1)
	_, accepted, ln := connect(t, nw, "a", "b")
	nw.kill("a")
	_ = accepted.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := accepted.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("b reads %v from the killed node's connection, want EOF", err)
	}
	nw.kill("b")
	_, err := nw.dial(context.Background(), "c", ln.Addr().String())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a killed node: %v, want ECONNREFUSED", err)
	}
}

// The fate of each message on a faulty link is drawn from the seed.
func TestFatesFollowTheSeed(t *testing.T) {
	draw := func(seed int64) [][]time.Duration {
		nw := newNetwork(seed)
		nw.setLinkFaults("a", "b", LinkFaults{Drop: 0.3, Duplicate: 0.3, DelayMin: time.Millisecond, DelayMax: 50 * time.Millisecond})
		var fates [][]time.Duration
		for range 100 {
			fates = append(fates, nw.fate("a", "b"))
		}
		if got := nw.fate("b", "a"); !slices.Equal(got, []time.Duration{0}) {
			t.Fatalf("the reverse link, which has no faults, gave %v", got)
		}
		return fates
	}
	a, b, c := draw(7), draw(7), draw(8)
	lost, twice := 0, 0
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("seed 7 drew %v then %v for message %d", a[i], b[i], i)
		}
		lost += btoi(len(a[i]) == 0)
		twice += btoi(len(a[i]) == 2)
	}
	if lost == 0 || twice == 0 {
		t.Fatalf("of 100 messages %d were lost and %d duplicated; want some of each", lost, twice)
	}
	if slices.EqualFunc(a, c, slices.Equal) {
		t.Fatal("seeds 7 and 8 drew the same fates")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
