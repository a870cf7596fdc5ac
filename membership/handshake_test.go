package membership

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cpggo/cpg/internal/wire"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// handshakePair runs a dial and an accept over a real loopback connection
// and returns both outcomes.
func handshakePair(t *testing.T, dialer, acceptor handshake, expect string, transient bool) (handshakeResult, error, handshakeResult, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type outcome struct {
		res handshakeResult
		err error
	}
	accepted := make(chan outcome, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- outcome{err: err}
			return
		}
		defer c.Close()
		r, err := acceptor.accept(c)
		accepted <- outcome{r, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dr, derr := dialer.dial(c, expect, transient)
	a := <-accepted
	return dr, derr, a.res, a.err
}

func testHandshake(name, label string, key []byte) handshake {
	return handshake{self: Peer{Name: name, Addr: name + ":7000"}, label: label, key: key, timeout: 5 * time.Second}
}

func TestHandshakeAuthenticatesBothSides(t *testing.T) {
	for _, transient := range []bool{false, true} {
		dr, derr, ar, aerr := handshakePair(t, testHandshake("a", "cpg", testKey), testHandshake("b", "cpg", testKey), "b", transient)
		if derr != nil || aerr != nil {
			t.Fatalf("handshake failed: dialer %v, acceptor %v", derr, aerr)
		}
		if dr.peer != (Peer{Name: "b", Addr: "b:7000"}) || ar.peer != (Peer{Name: "a", Addr: "a:7000"}) {
			t.Fatalf("peers: dialer saw %v, acceptor saw %v", dr.peer, ar.peer)
		}
		if ar.transient != transient || dr.transient {
			t.Fatalf("transient=%v: acceptor saw %v, dialer %v", transient, ar.transient, dr.transient)
		}
	}
}

func TestHandshakeRefusesWrongKey(t *testing.T) {
	other := []byte("fedcba9876543210fedcba9876543210")
	_, derr, _, aerr := handshakePair(t, testHandshake("a", "cpg", other), testHandshake("b", "cpg", testKey), "b", false)
	if !errors.Is(derr, ErrClusterKey) || !errors.Is(aerr, ErrClusterKey) {
		t.Fatalf("want ErrClusterKey on both sides, got dialer %v, acceptor %v", derr, aerr)
	}
}

func TestHandshakeRefusesMissingKey(t *testing.T) {
	_, derr, _, aerr := handshakePair(t, testHandshake("a", "cpg", nil), testHandshake("b", "cpg", testKey), "", false)
	if !errors.Is(derr, ErrClusterKey) || !errors.Is(aerr, ErrClusterKey) {
		t.Fatalf("want ErrClusterKey on both sides, got dialer %v, acceptor %v", derr, aerr)
	}
}

func TestHandshakeRefusesOtherLabel(t *testing.T) {
	_, derr, _, aerr := handshakePair(t, testHandshake("a", "staging", testKey), testHandshake("b", "prod", testKey), "", false)
	if !errors.Is(derr, ErrClusterLabel) || !errors.Is(aerr, ErrClusterLabel) {
		t.Fatalf("want ErrClusterLabel on both sides, got dialer %v, acceptor %v", derr, aerr)
	}
}

func TestHandshakeRefusesUnexpectedPeer(t *testing.T) {
	_, derr, _, aerr := handshakePair(t, testHandshake("a", "cpg", testKey), testHandshake("b", "cpg", testKey), "c", false)
	if !errors.Is(derr, ErrPeerIdentity) {
		t.Fatalf("dialer: want ErrPeerIdentity, got %v", derr)
	}
	if !errors.Is(aerr, ErrPeerIdentity) {
		t.Fatalf("acceptor: want the refusal reported as ErrPeerIdentity, got %v", aerr)
	}
}

func TestHandshakeRefusesOwnName(t *testing.T) {
	_, derr, _, aerr := handshakePair(t, testHandshake("a", "cpg", testKey), testHandshake("a", "cpg", testKey), "", false)
	if !errors.Is(derr, ErrPeerIdentity) || !errors.Is(aerr, ErrPeerIdentity) {
		t.Fatalf("want ErrPeerIdentity, got dialer %v, acceptor %v", derr, aerr)
	}
}

func TestHandshakeRejectsGarbage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = testHandshake("b", "cpg", testKey).accept(c)
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := wire.WriteFrame(c, frameHello, []byte{ProtocolVersion, 2, 3}, maxHandshakeFrame); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, errMalformedHello) {
		t.Fatalf("want a malformed-handshake error, got %v", err)
	}
}

func TestHandshakeTimesOutOnSilentPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := testHandshake("a", "cpg", testKey)
	h.timeout = 100 * time.Millisecond
	start := time.Now()
	if _, err := h.dial(c, "", false); err == nil {
		t.Fatal("handshake with a silent peer succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("handshake took %v to give up, want about the 100ms timeout", d)
	}
}

func TestProofBindsEveryField(t *testing.T) {
	d := hello{Label: "cpg", Name: "a", Addr: "x", Nonce: bytes.Repeat([]byte{1}, nonceLen)}
	a := hello{Label: "cpg", Name: "b", Addr: "y", Nonce: bytes.Repeat([]byte{2}, nonceLen)}
	base := proof(testKey, true, d, a)
	if bytes.Equal(base, proof(testKey, false, d, a)) {
		t.Fatal("dialer and acceptor proofs are equal: a proof could be reflected")
	}
	for name, mutate := range map[string]func(*hello, *hello){
		"dialer nonce":   func(d, _ *hello) { d.Nonce = bytes.Repeat([]byte{3}, nonceLen) },
		"acceptor nonce": func(_, a *hello) { a.Nonce = bytes.Repeat([]byte{3}, nonceLen) },
		"dialer name":    func(d, _ *hello) { d.Name = "z" },
		"acceptor addr":  func(_, a *hello) { a.Addr = "z" },
		"label":          func(d, _ *hello) { d.Label = "other" },
		"transient":      func(d, _ *hello) { d.Transient = true },
		"dialer frame":   func(d, _ *hello) { d.MaxFrame = 1 },
		"acceptor frame": func(_, a *hello) { a.MaxFrame = 1 },
		"dialer window":  func(d, _ *hello) { d.Window = 1 },
		"acceptor wind.": func(_, a *hello) { a.Window = 1 },
	} {
		d2, a2 := d, a
		mutate(&d2, &a2)
		if bytes.Equal(base, proof(testKey, true, d2, a2)) {
			t.Errorf("changing the %s leaves the proof unchanged", name)
		}
	}
}

// FuzzDecodeHandshake checks that the handshake decoders never panic, and
// that a hello that decodes encodes back to a hello with the same fields.
func FuzzDecodeHandshake(f *testing.F) {
	f.Add(appendHello(nil, hello{Version: ProtocolVersion, Label: "cpg", Name: "a", Addr: "127.0.0.1:1", Nonce: make([]byte, nonceLen),
		MaxFrame: minMaxFrame, Window: uint32(linkWindow(minMaxFrame))}))
	f.Add(appendHello(nil, hello{Version: 1, Label: "cpg", Name: "a", Addr: "127.0.0.1:1", Nonce: make([]byte, nonceLen)}))
	f.Add(appendRefusal(nil, refusal{Code: refuseKey, Reason: "cluster key mismatch"}))
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, body []byte) {
		if h, err := decodeHello(body); err == nil {
			h2, err := decodeHello(appendHello(nil, h))
			if err != nil {
				t.Fatalf("re-decode of %+v: %v", h, err)
			}
			if h2.Version != h.Version || h2.Label != h.Label || h2.Name != h.Name || h2.Addr != h.Addr ||
				!bytes.Equal(h2.Nonce, h.Nonce) || h2.Transient != h.Transient ||
				h2.MaxFrame != h.MaxFrame || h2.Window != h.Window {
				t.Fatalf("hello %+v round-trips to %+v", h, h2)
			}
		}
		if r, err := decodeRefusal(body); err == nil {
			r2, err := decodeRefusal(appendRefusal(nil, r))
			if err != nil || r2 != r {
				t.Fatalf("refusal %+v round-trips to %+v (%v)", r, r2, err)
			}
		}
	})
}
