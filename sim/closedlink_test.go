package sim

import (
	"testing"
	"time"
)

// The model loses messages, but not connections: a link's DISCONNECT can be
// lost, yet the driver closes the connection after it, and a link whose
// opening reply was lost is one the peer never adopted, so it answers no
// keepalive. Either way the node's driver reports the link failed. A node
// must never keep a link its peer does not hold, carrying nothing (every
// graft and exchange over it lost), until the end of the run.
func TestOneSidedLinkFailsAsItsDriverWouldReportIt(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Loss = 0.1
	s, err := build(cfg, Cluster{Nodes: 200})
	if err != nil {
		t.Fatal(err)
	}
	// Shuffles and refills retire links all along; a tenth of their
	// DISCONNECTs are lost.
	s.RunFor(60 * time.Second)
	lost := s.Stats().Lost
	s.cfg.Loss = 0
	s.RunFor(2 * s.cfg.KeepAliveTimeout)
	if lost == 0 {
		t.Fatal("no message was lost: the test lost no DISCONNECT")
	}
	if o := s.Overlay(0); !o.Symmetric {
		t.Errorf("%d links held at one end only, two keepalive timeouts after the losses stopped", o.Asymmetric)
	}
}
