package sim

// traceHash folds every processed event (time, kind, endpoints) into a
// 64-bit FNV-1a hash, so that two runs can be compared event by event
// without storing the trace.
type traceHash struct{ sum uint64 }

func (t *traceHash) add(e *event) {
	if t.sum == 0 {
		t.sum = fnvOffset
	}
	t.mix(uint64(e.at))
	t.mix(uint64(e.kind))
	t.mix(uint64(uint32(e.from))<<32 | uint64(uint32(e.to)))
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (t *traceHash) mix(v uint64) {
	for range 8 {
		t.sum ^= v & 0xff
		t.sum *= fnvPrime
		v >>= 8
	}
}
