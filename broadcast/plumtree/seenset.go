package plumtree

import (
	"fmt"
	"math"
)

// SeenSetConfig configures a SeenSet.
type SeenSetConfig struct {
	// Deliver is called once for each new message, from the driving
	// goroutine; it must not block. Required.
	Deliver func(id, payload []byte)
	// MaxEntries bounds the ids (and payloads) remembered. Default 65536.
	MaxEntries int
	// TTLTicks is how long an id is remembered. Default 600 (60 s at the
	// default tick).
	TTLTicks int
	// MaxBytes bounds the payload bytes kept for grafts. Default 16 MiB.
	MaxBytes int
}

// SeenSet is a ready-made Handler for applications without a state of their
// own to deduplicate against: a bounded, time-limited set of seen ids with
// their payloads, delivering each new message to a callback.
//
// Its limits, which a CRDT-backed handler does not have:
//   - An id forgotten (after TTLTicks, or evicted at MaxEntries) and then
//     received again is delivered again. Keep TTLTicks well above the time a
//     message can spend in flight, and ids unique (say, origin plus counter).
//   - It does no anti-entropy: a node that misses a message for longer than
//     Config.MissingTTLTicks, or joins after it was sent, never gets it.
//   - Payloads are kept only within MaxBytes, so a late graft may find none.
//
// A SeenSet is not safe for concurrent use; the Plumtree that owns it ages it
// through Tick.
type SeenSet struct {
	cfg     SeenSetConfig
	now     int64
	entries map[string]*seenEntry
	fifo    []seenRef
	bytes   int
}

type seenEntry struct {
	payload []byte
	at      int64
}

type seenRef struct {
	id string
	at int64
}

// NewSeenSet returns an empty SeenSet.
func NewSeenSet(cfg SeenSetConfig) (*SeenSet, error) {
	if cfg.Deliver == nil {
		return nil, fmt.Errorf("plumtree: SeenSetConfig.Deliver is nil")
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1 << 16
	}
	if cfg.TTLTicks <= 0 {
		cfg.TTLTicks = 600
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 16 << 20
	}
	return &SeenSet{cfg: cfg, entries: map[string]*seenEntry{}}, nil
}

// Add records a message as seen without delivering it, and reports whether
// the id was new. Broadcast does this itself (RecordLocal).
func (s *SeenSet) Add(id, payload []byte) bool {
	if _, ok := s.entries[string(id)]; ok {
		return false
	}
	e := &seenEntry{at: s.now}
	if s.bytes+len(payload) <= s.cfg.MaxBytes {
		e.payload = append([]byte(nil), payload...)
		s.bytes += len(payload)
	}
	s.entries[string(id)] = e
	s.fifo = append(s.fifo, seenRef{id: string(id), at: s.now})
	for len(s.entries) > s.cfg.MaxEntries {
		s.pop()
	}
	return true
}

// RecordLocal implements LocalRecorder: a message this node broadcasts is
// recorded as seen, not delivered.
func (s *SeenSet) RecordLocal(id, payload []byte) { s.Add(id, payload) }

// Len returns the number of ids remembered.
func (s *SeenSet) Len() int { return len(s.entries) }

// Merge implements Handler: a new id is recorded and delivered (New); an id
// already seen is a Duplicate (a SeenSet learns nothing by other means).
func (s *SeenSet) Merge(_ string, id, payload []byte) (Verdict, []Action) {
	if !s.Add(id, payload) {
		return Duplicate, nil
	}
	s.cfg.Deliver(id, payload)
	return New, nil
}

// IsStale implements Handler.
func (s *SeenSet) IsStale(id []byte) bool {
	_, ok := s.entries[string(id)]
	return ok
}

// Graft implements Handler.
func (s *SeenSet) Graft(id []byte) ([]byte, bool) {
	if e, ok := s.entries[string(id)]; ok && e.payload != nil {
		return e.payload, true
	}
	return nil, false
}

// ExchangeStart implements Handler; a SeenSet does no anti-entropy.
func (s *SeenSet) ExchangeStart(string) []byte { return nil }

// ExchangeReceive implements Handler; a SeenSet does no anti-entropy.
func (s *SeenSet) ExchangeReceive(Exchange, []byte) ([]byte, []Action) { return nil, nil }

// Tick implements Ticker: ids older than TTLTicks are forgotten.
// IdleTicks implements IdleTicker: Tick does nothing but count until the
// oldest entry's time is up.
func (s *SeenSet) IdleTicks() int64 {
	if len(s.fifo) == 0 {
		return math.MaxInt64
	}
	return max(s.fifo[0].at+int64(s.cfg.TTLTicks)-s.now-1, 0)
}

func (s *SeenSet) Tick() []Action {
	s.now++
	for len(s.fifo) > 0 && s.now-s.fifo[0].at >= int64(s.cfg.TTLTicks) {
		s.pop()
	}
	if cap(s.fifo) > 64 && len(s.fifo) < cap(s.fifo)/4 {
		s.fifo = append([]seenRef(nil), s.fifo...)
	}
	return nil
}

func (s *SeenSet) pop() {
	ref := s.fifo[0]
	s.fifo = s.fifo[1:]
	if e, ok := s.entries[ref.id]; ok && e.at == ref.at {
		s.bytes -= len(e.payload)
		delete(s.entries, ref.id)
	}
}
