package membership

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/cpggo/cpg/internal/wire"
)

// ProtocolVersion is the overlay protocol spoken after the handshake; a peer
// announcing another version is refused rather than misread. It covers
// every format carried over the overlay, the layers' above included (the
// broadcast's messages, the registry's payloads and the hashes its digests
// compare), since a peer that misreads those is as lost as one that
// misreads a frame: registry.TestWireFormatsAreVersioned pins them to it.
// Version 2 added payload credit (flow.go) and the frame limit to the
// hello; version 3, the siblings a root's GOSSIP names; version 4, the
// registry's chain hash a word at a time.
const ProtocolVersion = 4

// Handshake frames. They are only valid before the handshake completes and
// use their own small size limit: nothing in a handshake is large.
const (
	frameHello  byte = 1
	frameProof  byte = 2
	frameRefuse byte = 3

	maxHandshakeFrame = 4 << 10
	maxHelloName      = 255
	maxHelloAddr      = 255
	maxHelloLabel     = 255
	maxRefusalReason  = 255
	nonceLen          = 32
	// minMaxFrame is the smallest frame limit a node may announce: every
	// protocol message must fit.
	minMaxFrame = 64 << 10
)

// The errors a handshake ends with, so that callers (and tests) can tell a
// misconfigured cluster from a network failure.
var (
	ErrClusterKey     = errors.New("cluster key mismatch")
	ErrClusterLabel   = errors.New("cluster label mismatch")
	ErrVersion        = errors.New("protocol version mismatch")
	ErrPeerIdentity   = errors.New("unexpected peer identity")
	errMalformedHello = errors.New("malformed handshake")
)

// refusal codes carried by a refuse frame, so that the refused side reports
// the same sentinel error as the side that refused it.
const (
	refuseMalformed byte = iota + 1
	refuseVersion
	refuseLabel
	refuseKey
	refuseIdentity
)

var refusalErrors = map[byte]error{
	refuseMalformed: errMalformedHello,
	refuseVersion:   ErrVersion,
	refuseLabel:     ErrClusterLabel,
	refuseKey:       ErrClusterKey,
	refuseIdentity:  ErrPeerIdentity,
}

// hello opens the handshake from both sides at once.
type hello struct {
	Version   uint32
	Label     string
	Name      string
	Addr      string
	Nonce     []byte
	Transient bool // dialer only: the connection carries a few frames and closes
	// MaxFrame is the largest frame the node reads: the peer never sends
	// a larger one (Send refuses it), instead of sending it and having the
	// link cut.
	MaxFrame uint32
	// Window is how many bytes of payloads the node buffers for the
	// link: the peer's initial payload credit (flow.go).
	Window uint32
}

func appendHello(b []byte, h hello) []byte {
	b = wire.AppendUvarint(b, uint64(h.Version))
	b = wire.AppendString(b, h.Label)
	b = wire.AppendString(b, h.Name)
	b = wire.AppendString(b, h.Addr)
	b = wire.AppendBytes(b, h.Nonce)
	b = wire.AppendBool(b, h.Transient)
	b = wire.AppendUvarint(b, uint64(h.MaxFrame))
	return wire.AppendUvarint(b, uint64(h.Window))
}

func decodeHello(body []byte) (hello, error) {
	d := wire.NewDecoder(body)
	h := hello{Version: d.Uint32()}
	if d.Err() == nil && h.Version != ProtocolVersion {
		// What follows the version may mean something else in another
		// version: the hello is read as far as the version, and check
		// refuses it with ErrVersion.
		return h, nil
	}
	h.Label = d.String(maxHelloLabel)
	h.Name = d.String(maxHelloName)
	h.Addr = d.String(maxHelloAddr)
	h.Nonce = d.Bytes(nonceLen)
	h.Transient = d.Bool()
	h.MaxFrame = d.Uint32()
	h.Window = d.Uint32()
	if err := d.Finish(); err != nil {
		return hello{}, fmt.Errorf("%w: %w", errMalformedHello, err)
	}
	if len(h.Nonce) != nonceLen {
		return hello{}, fmt.Errorf("%w: nonce of %d bytes, want %d", errMalformedHello, len(h.Nonce), nonceLen)
	}
	if h.Name == "" {
		return hello{}, fmt.Errorf("%w: empty node name", errMalformedHello)
	}
	if h.MaxFrame < minMaxFrame {
		return hello{}, fmt.Errorf("%w: frame limit %d under %d", errMalformedHello, h.MaxFrame, minMaxFrame)
	}
	if h.MaxFrame > maxMaxFrame {
		return hello{}, fmt.Errorf("%w: frame limit %d over %d", errMalformedHello, h.MaxFrame, maxMaxFrame)
	}
	// Two of the largest payloads must fit in the window: then a sender
	// short of credit for its next payload always has a grant coming.
	if need := 2 * (uint64(h.MaxFrame) + payloadOverhead); uint64(h.Window) < need {
		return hello{}, fmt.Errorf("%w: payload window %d under two %d-byte frames", errMalformedHello, h.Window, h.MaxFrame)
	}
	return h, nil
}

// refusal is the body of a refuse frame.
type refusal struct {
	Code   byte
	Reason string
}

func appendRefusal(b []byte, r refusal) []byte {
	b = append(b, r.Code)
	return wire.AppendString(b, r.Reason)
}

func decodeRefusal(body []byte) (refusal, error) {
	d := wire.NewDecoder(body)
	r := refusal{Code: d.Byte(), Reason: d.String(maxRefusalReason)}
	if err := d.Finish(); err != nil {
		return refusal{}, fmt.Errorf("%w: refusal: %w", errMalformedHello, err)
	}
	return r, nil
}

// handshake authenticates one overlay connection in both directions. Both
// sides send a hello (version, cluster label, name, overlay address, a fresh
// random nonce), check the other's, then each proves it holds the cluster
// key with HMAC-SHA256 over both hellos and its role. The nonces make every
// proof fresh (a recorded handshake cannot be replayed), and the role byte
// keeps a proof from being reflected back at its author.
type handshake struct {
	self    Peer
	label   string
	key     []byte
	timeout time.Duration
	// maxFrame is the largest frame this node reads, announced with the
	// window it implies (linkWindow). Zero takes wire.DefaultMaxFrame.
	maxFrame int
}

// handshakeResult is what a completed handshake establishes.
type handshakeResult struct {
	peer      Peer
	transient bool
	// The peer's announced limits: the largest frame it reads, and the
	// payload bytes it buffers for the link (our initial credit).
	peerMaxFrame int
	peerWindow   int
}

// dial runs the dialer's side. expect, if not empty, is the name the dialer
// meant to reach: an address now held by another node is an error, not a
// link to the wrong peer.
func (h handshake) dial(conn net.Conn, expect string, transient bool) (handshakeResult, error) {
	return h.run(conn, true, expect, transient)
}

// accept runs the listener's side.
func (h handshake) accept(conn net.Conn) (handshakeResult, error) {
	return h.run(conn, false, "", false)
}

func (h handshake) run(conn net.Conn, dialer bool, expect string, transient bool) (handshakeResult, error) {
	if h.timeout > 0 {
		if err := conn.SetDeadline(time.Now().Add(h.timeout)); err != nil {
			return handshakeResult{}, err
		}
		defer conn.SetDeadline(time.Time{})
	}
	nonce := make([]byte, nonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return handshakeResult{}, fmt.Errorf("handshake nonce: %w", err)
	}
	mine := hello{
		Version: ProtocolVersion, Label: h.label, Name: h.self.Name, Addr: h.self.Addr,
		Nonce: nonce, Transient: dialer && transient,
		MaxFrame: uint32(h.announcedMaxFrame()), Window: uint32(h.announcedWindow()),
	}
	if err := wire.WriteFrame(conn, frameHello, appendHello(nil, mine), maxHandshakeFrame); err != nil {
		return handshakeResult{}, fmt.Errorf("handshake: send hello: %w", err)
	}
	theirs, err := readHello(conn)
	if err != nil {
		return handshakeResult{}, err
	}
	if err := h.check(theirs, expect); err != nil {
		refuse(conn, err)
		return handshakeResult{}, fmt.Errorf("handshake with %q at %s: %w", theirs.Name, conn.RemoteAddr(), err)
	}
	d, a := mine, theirs
	if !dialer {
		d, a = theirs, mine
	}
	if err := wire.WriteFrame(conn, frameProof, proof(h.key, dialer, d, a), maxHandshakeFrame); err != nil {
		return handshakeResult{}, fmt.Errorf("handshake: send proof: %w", err)
	}
	typ, body, err := wire.ReadFrame(conn, maxHandshakeFrame)
	if err != nil {
		return handshakeResult{}, fmt.Errorf("handshake with %q: read proof: %w", theirs.Name, err)
	}
	switch typ {
	case frameProof:
		if !hmac.Equal(body, proof(h.key, !dialer, d, a)) {
			refuse(conn, ErrClusterKey)
			return handshakeResult{}, fmt.Errorf("handshake with %q at %s: %w", theirs.Name, conn.RemoteAddr(), ErrClusterKey)
		}
	case frameRefuse:
		return handshakeResult{}, refusedError(theirs.Name, body)
	default:
		return handshakeResult{}, fmt.Errorf("handshake with %q: %w: frame type %d instead of a proof", theirs.Name, errMalformedHello, typ)
	}
	return handshakeResult{
		peer:      Peer{Name: theirs.Name, Addr: theirs.Addr},
		transient: !dialer && theirs.Transient,

		peerMaxFrame: int(theirs.MaxFrame),
		peerWindow:   int(theirs.Window),
	}, nil
}

func (h handshake) announcedMaxFrame() int {
	if h.maxFrame <= 0 {
		return wire.DefaultMaxFrame
	}
	return h.maxFrame
}

func (h handshake) announcedWindow() int { return linkWindow(h.announcedMaxFrame()) }

func readHello(conn net.Conn) (hello, error) {
	typ, body, err := wire.ReadFrame(conn, maxHandshakeFrame)
	if err != nil {
		return hello{}, fmt.Errorf("handshake with %s: read hello: %w", conn.RemoteAddr(), err)
	}
	switch typ {
	case frameHello:
		h, err := decodeHello(body)
		if err != nil {
			refuse(conn, errMalformedHello)
			return hello{}, fmt.Errorf("handshake with %s: %w", conn.RemoteAddr(), err)
		}
		return h, nil
	case frameRefuse:
		return hello{}, refusedError(conn.RemoteAddr().String(), body)
	default:
		return hello{}, fmt.Errorf("handshake with %s: %w: frame type %d instead of a hello", conn.RemoteAddr(), errMalformedHello, typ)
	}
}

func (h handshake) check(theirs hello, expect string) error {
	switch {
	case theirs.Version != ProtocolVersion:
		return fmt.Errorf("%w: peer speaks %d, we speak %d", ErrVersion, theirs.Version, ProtocolVersion)
	case theirs.Label != h.label:
		return fmt.Errorf("%w: peer is in cluster %q, we are in %q", ErrClusterLabel, theirs.Label, h.label)
	case theirs.Name == h.self.Name:
		return fmt.Errorf("%w: peer claims our own name %q", ErrPeerIdentity, theirs.Name)
	case expect != "" && theirs.Name != expect:
		return fmt.Errorf("%w: dialed %q, reached %q", ErrPeerIdentity, expect, theirs.Name)
	}
	return nil
}

// proof is the HMAC a side sends to show it holds the key. Every field is
// length-prefixed, so no two distinct inputs share an encoding.
func proof(key []byte, byDialer bool, d, a hello) []byte {
	mac := hmac.New(sha256.New, key)
	msg := wire.AppendString(nil, "cpg membership handshake")
	msg = wire.AppendBool(msg, byDialer)
	msg = wire.AppendString(msg, d.Label)
	msg = wire.AppendBytes(msg, d.Nonce)
	msg = wire.AppendBytes(msg, a.Nonce)
	msg = wire.AppendString(msg, d.Name)
	msg = wire.AppendString(msg, a.Name)
	msg = wire.AppendString(msg, d.Addr)
	msg = wire.AppendString(msg, a.Addr)
	msg = wire.AppendBool(msg, d.Transient)
	msg = wire.AppendUvarint(msg, uint64(d.MaxFrame))
	msg = wire.AppendUvarint(msg, uint64(a.MaxFrame))
	msg = wire.AppendUvarint(msg, uint64(d.Window))
	msg = wire.AppendUvarint(msg, uint64(a.Window))
	mac.Write(msg)
	return mac.Sum(nil)
}

// refuse tells the peer why the handshake ends, best effort: the connection
// is closed right after whether or not the peer reads it.
func refuse(w io.Writer, cause error) {
	r := refusal{Code: refuseMalformed, Reason: cause.Error()}
	for code, sentinel := range refusalErrors {
		if errors.Is(cause, sentinel) {
			r.Code = code
		}
	}
	if len(r.Reason) > maxRefusalReason {
		r.Reason = r.Reason[:maxRefusalReason]
	}
	_ = wire.WriteFrame(w, frameRefuse, appendRefusal(nil, r), maxHandshakeFrame)
}

func refusedError(peer string, body []byte) error {
	r, err := decodeRefusal(body)
	if err != nil {
		return fmt.Errorf("handshake with %s: %w", peer, err)
	}
	sentinel, ok := refusalErrors[r.Code]
	if !ok {
		sentinel = errMalformedHello
	}
	return fmt.Errorf("handshake with %s: refused by peer (%s): %w", peer, r.Reason, sentinel)
}
