package membership

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// TestSendManyGivesEveryPeerThePayload: each active peer gets the payload
// as Send would have given it, though the links share one frame, and a
// peer that is not active gets Send's error without failing the others.
func TestSendManyGivesEveryPeerThePayload(t *testing.T) {
	nodes := startCluster(t, 3)
	waitOverlay(t, nodes, 2, len(nodes), 10*time.Second)
	src := nodes[0]
	peers := []string{nodes[1].Self().Name, "nobody", nodes[2].Self().Name}
	payload := bytes.Repeat([]byte("batch"), 10_000)

	errs := src.SendMany(peers, payload)
	if len(errs) != len(peers) || errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrNotActive) {
		t.Fatalf("errors %v, want only the stranger refused as not active", errs)
	}
	for _, dst := range []*Node{nodes[1], nodes[2]} {
		ev := nextEvent(t, dst, Message, 10*time.Second)
		if ev.Peer.Name != src.Self().Name || !bytes.Equal(ev.Payload, payload) {
			t.Fatalf("%s got %d bytes from %s, want the %d-byte payload from %s", dst.Self().Name, len(ev.Payload), ev.Peer.Name, len(payload), src.Self().Name)
		}
	}
	if errs := src.SendMany(peers[:1], payload); errs != nil {
		t.Fatalf("one active peer: %v", errs)
	}
	if errs := src.SendMany(peers[:1], make([]byte, src.cfg.MaxFrame)); len(errs) != 1 || errs[0] == nil {
		t.Fatalf("a payload over MaxFrame: %v", errs)
	}
}
