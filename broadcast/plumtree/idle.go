package plumtree

// IdleTicker is implemented by a Ticker handler that can tell how long
// its Tick will do nothing but count ticks: the Plumtree's idle ticks are
// at most every ticking handler's (see Protocol.IdleTicks).
type IdleTicker interface {
	Ticker
	// IdleTicks is how many of the next calls to Tick would return no
	// action and change nothing but the handler's count of ticks, if
	// nothing else reached the handler meanwhile.
	IdleTicks() int64
}

// IdleTicks is how many of the next ticks would do nothing but advance
// time: no graft timer, announcement, exchange or tree query is pending,
// every ticking handler is idle, and neither the periodic exchange nor the
// expiry of a recent delivery falls within them. 0 means the next tick
// has work. A driver may then wait that many ticks before it ticks again
// (and tick them all at once), which lets an idle node sleep instead of
// waking at every tick; anything that arrives meanwhile can end the
// idleness, so the driver asks again after every step.
func (p *Protocol) IdleTicks() int64 {
	if len(p.missing) > 0 || len(p.lazyQueues) > 0 || len(p.exchanges) > 0 || len(p.queries) > 0 {
		return 0
	}
	// The tick at which something happens: Tick first increments now,
	// so work due at tick t is done by the (t-now)th call from here.
	next := p.nextExchange
	if len(p.recentFIFO) > 0 {
		next = min(next, p.recentFIFO[0].at+int64(p.cfg.RecentTTLTicks))
	}
	idle := max(next-p.now-1, 0)
	for _, topic := range p.topics {
		h := p.handlers[topic]
		if _, ticks := h.(Ticker); !ticks {
			continue
		}
		it, ok := h.(IdleTicker)
		if !ok {
			return 0
		}
		idle = min(idle, max(it.IdleTicks(), 0))
	}
	return idle
}
