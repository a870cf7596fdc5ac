package plumtree

import (
	"errors"
	"fmt"
	"slices"
	"sort"
)

// Exchange describes one anti-entropy exchange: in Exchanges, one in
// progress; in Handler.ExchangeReceive, the one the message belongs to.
type Exchange struct {
	Peer      string
	Topic     string
	ID        uint64 // chosen by the initiator; unique with (Peer, Initiated)
	Initiated bool   // this node opened it
	Started   int64  // tick
	Active    int64  // tick of the last message
	Steps     int    // messages so far, sent and received
	// Step is the step of the last message received: 0 is the initiator's
	// opening; even steps come from the initiator, odd ones from the
	// responder.
	Step uint32
}

type exchangeKey struct {
	peer  string
	topic string
	mine  bool
	id    uint64
}

// ErrExchangeLimit reports an exchange not opened because this node already
// follows Config.MaxTrackedExchanges.
var ErrExchangeLimit = errors.New("plumtree: tracked exchanges at the limit")

// ErrNotNeighbor reports an exchange asked for with a peer that is not a
// current neighbour.
var ErrNotNeighbor = errors.New("plumtree: not a neighbour")

// startExchanges opens an exchange with peer for every topic whose handler
// has something to say.
func (p *Protocol) startExchanges(peer string) {
	for _, topic := range p.topics {
		p.startExchange(peer, topic)
	}
}

// startExchange opens an exchange the protocol decided on (a new link, the
// periodic tick); a refusal is only counted.
func (p *Protocol) startExchange(peer, topic string) {
	_ = p.openExchange(topic, peer, nil)
}

// StartExchange opens an exchange on topic with peer now (start nil: ask
// the handler's ExchangeStart, which may decline with nil). It counts
// against Config.MaxTrackedExchanges, not MaxExchanges.
func (p *Protocol) StartExchange(topic, peer string, start []byte) error {
	if _, ok := p.handlers[topic]; !ok {
		return fmt.Errorf("%w %q", ErrNoHandler, topic)
	}
	if !p.isNeighbor(peer) {
		return fmt.Errorf("plumtree: exchange on %q with %s: %w", topic, peer, ErrNotNeighbor)
	}
	return p.openExchange(topic, peer, start)
}

func (p *Protocol) openExchange(topic, peer string, start []byte) error {
	if len(p.exchanges) >= p.cfg.MaxTrackedExchanges {
		p.stats.ExchangesRefused++
		return fmt.Errorf("plumtree: exchange on %q with %s: %w", topic, peer, ErrExchangeLimit)
	}
	if len(start) > MaxPayloadLen {
		return fmt.Errorf("plumtree: exchange opening of %d bytes exceeds the %d-byte limit", len(start), MaxPayloadLen)
	}
	data := start
	if data == nil {
		data = p.handlers[topic].ExchangeStart(peer)
		if data == nil {
			return nil
		}
	}
	p.nextExchangeID++
	id := p.nextExchangeID
	p.exchanges[exchangeKey{peer: peer, topic: topic, mine: true, id: id}] = &Exchange{
		Peer: peer, Topic: topic, ID: id, Initiated: true, Started: p.now, Active: p.now, Steps: 1,
	}
	p.send(peer, Message{Type: MsgExchange, Topic: topic, Exchange: id, Step: 0, Payload: data})
	return nil
}

// CancelExchanges ends every exchange with peer (topic "" = all topics),
// telling the peer so that it frees them too.
func (p *Protocol) CancelExchanges(topic, peer string) {
	var ended []Exchange
	for k, x := range p.exchanges {
		if k.peer == peer && (topic == "" || k.topic == topic) {
			ended = append(ended, *x)
			delete(p.exchanges, k)
		}
	}
	if !p.isNeighbor(peer) {
		return
	}
	sortExchanges(ended)
	for _, x := range ended {
		p.sendEnd(x.Peer, x.Topic, x.ID, nextStep(x))
	}
}

// nextStep is the step x's owner at this end would send next: even for the
// initiator, odd for the responder. An EXCHANGE-END carries it, so that the
// receiver knows whose exchange ends.
func nextStep(x Exchange) uint32 {
	step := uint32(x.Steps)
	if (step%2 == 0) != x.Initiated {
		step++
	}
	return step
}

func (p *Protocol) sendEnd(peer, topic string, id uint64, step uint32) {
	p.send(peer, Message{Type: MsgExchangeEnd, Topic: topic, Exchange: id, Step: step})
}

// onExchangeEnd frees the exchange the peer ended. One we no longer know
// (timed out, never tracked) changes nothing.
func (p *Protocol) onExchangeEnd(from string, m Message) {
	delete(p.exchanges, exchangeKey{peer: from, topic: m.Topic, mine: m.Step%2 == 1, id: m.Exchange})
}

// exchangePeriod is the wait until the next periodic exchange: uniform
// within half a period either side of ExchangeTicks, so its mean is
// ExchangeTicks and nodes drift apart instead of exchanging in lockstep.
func (p *Protocol) exchangePeriod() int64 {
	t := p.cfg.ExchangeTicks
	half := t / 2
	return int64(t - half + p.cfg.Rand.IntN(2*half+1))
}

// periodicExchange runs anti-entropy with one random neighbour, unless the
// exchanges this node opened are already at the limit.
func (p *Protocol) periodicExchange() {
	if len(p.neighbors) == 0 || len(p.topics) == 0 {
		return
	}
	running := 0
	for k := range p.exchanges {
		if k.mine {
			running++
		}
	}
	if running >= p.cfg.MaxExchanges {
		p.stats.ExchangesSkipped++
		return
	}
	p.startExchanges(p.neighbors[p.cfg.Rand.IntN(len(p.neighbors))])
}

func (p *Protocol) onExchange(from string, m Message) error {
	h, err := p.handler(m.Topic)
	if err != nil {
		return err
	}
	// Even steps come from the initiator, odd ones from the responder.
	key := exchangeKey{peer: from, topic: m.Topic, mine: m.Step%2 == 1, id: m.Exchange}
	x := p.exchanges[key]
	if x == nil {
		if m.Step != 0 {
			p.stats.ExchangesLate++ // we gave up on it already
			return nil
		}
		if len(p.exchanges) >= p.cfg.MaxTrackedExchanges {
			p.stats.ExchangesRefused++
			p.sendEnd(from, m.Topic, m.Exchange, 1)
			return nil
		}
		x = &Exchange{Peer: from, Topic: m.Topic, ID: m.Exchange, Started: p.now}
		p.exchanges[key] = x
	}
	x.Active = p.now
	x.Steps++
	x.Step = m.Step
	reply, actions := h.ExchangeReceive(*x, m.Payload)
	if reply == nil || int(m.Step)+1 >= p.cfg.MaxExchangeSteps {
		delete(p.exchanges, key)
		// The peer cannot tell that the handler stopped; at the step
		// limit it knows, as both ends count.
		if int(m.Step)+1 < p.cfg.MaxExchangeSteps {
			p.sendEnd(from, m.Topic, m.Exchange, m.Step+1)
		}
		p.runActions(m.Topic, actions)
		return nil
	}
	x.Steps++
	if int(m.Step)+2 >= p.cfg.MaxExchangeSteps {
		delete(p.exchanges, key) // no answer may follow this last step
	}
	p.send(from, Message{Type: MsgExchange, Topic: m.Topic, Exchange: m.Exchange, Step: m.Step + 1, Payload: reply})
	p.runActions(m.Topic, actions)
	return nil
}

func (p *Protocol) expireExchanges() {
	for k, x := range p.exchanges {
		if p.now-x.Active >= int64(p.cfg.ExchangeTimeoutTicks) {
			delete(p.exchanges, k)
		}
	}
}

// Exchanges returns the exchanges in progress, as partisan's exchanges():
// opened by either side and not yet ended or timed out.
func (p *Protocol) Exchanges() []Exchange {
	xs := make([]Exchange, 0, len(p.exchanges))
	for _, x := range p.exchanges {
		xs = append(xs, *x)
	}
	sortExchanges(xs)
	return slices.Clip(xs)
}

func sortExchanges(xs []Exchange) {
	sort.Slice(xs, func(i, j int) bool {
		a, b := xs[i], xs[j]
		if a.Peer != b.Peer {
			return a.Peer < b.Peer
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Initiated != b.Initiated {
			return a.Initiated
		}
		return a.ID < b.ID
	})
}
