package testcluster

import (
	"time"

	"github.com/cpggo/cpg/broadcast"
)

// faultyTransport is the overlay as one node's broadcast layer sees it,
// with the faults of each directed link applied to the messages it sends.
type faultyTransport struct {
	broadcast.Transport
	nw   *network
	self string
}

// Send delivers payload as the link's faults decide: maybe not at all,
// maybe twice, maybe late. A message lost or delivered late reports
// success, as a message lost in the network would.
func (t *faultyTransport) Send(peer string, payload []byte) error {
	delays := t.nw.fate(t.self, peer)
	if len(delays) == 1 && delays[0] == 0 {
		return t.Transport.Send(peer, payload)
	}
	payload = append([]byte(nil), payload...)
	for _, d := range delays {
		if d == 0 {
			_ = t.Transport.Send(peer, payload)
			continue
		}
		time.AfterFunc(d, func() { _ = t.Transport.Send(peer, payload) })
	}
	return nil
}
