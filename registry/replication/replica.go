package replication

import (
	"math"
	"slices"
	"time"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
)

// Config tunes a Replica. A zero field takes its default.
type Config struct {
	// PullTicks is how long after pulling an owner from a peer (an op
	// arrived ahead of a gap) the replica waits before it pulls that owner
	// again: one pull answers every op of the same gap. Default 1 s.
	PullTicks int
	// Tick is the length of the broadcast's tick, which ticks the replica;
	// it turns the defaults that are durations into ticks. Default
	// plumtree.DefaultTick.
	Tick time.Duration
}

func (c Config) withDefaults() Config {
	if c.PullTicks <= 0 {
		c.PullTicks = plumtree.TicksOf(time.Second, c.Tick)
	}
	return c
}

// Stats counts what a replica did with what it received.
type Stats struct {
	Applied    uint64 // ops and owner states that moved an owner forward
	Buffered   uint64 // ops that arrived ahead of a gap
	Duplicates uint64 // ops and states already held
	Refused    uint64 // ops and states of dead owners or claiming to be this node
	Malformed  uint64 // payloads or exchange messages that did not decode
	Pulls      uint64 // exchanges opened at once because of a gap
	Passed     uint64 // owner states passed on after an exchange moved them forward
	Refutes    uint64 // new incarnations taken because a peer claimed this node dead or ahead
	Deaths     uint64 // tombstones received that purged an owner
	// ExchangeBytes is the size of the exchange messages this replica
	// produced (starts and replies): the anti-entropy traffic it sent.
	ExchangeBytes uint64
}

// Replica is one node's replication core: the Plumtree handler of Topic
// over a crdt.State. The caller owns the state and makes local changes
// through it (crdt.State.LocalJoin and friends), then broadcasts them with
// Publish's id and payload.
type Replica struct {
	st  *crdt.State
	cfg Config
	now int64

	// pulls holds, per owner, the tick until which no new pull goes out.
	pulls map[string]int64
	// gaps holds, per owner with ops waiting ahead of a gap, the peer that
	// sent the latest of them: the pull is retried there until the gap
	// fills, since a pull's exchange can be lost like any message.
	gaps map[string]string

	stats Stats
	// decoding holds the ops of the payload being merged, kept from one
	// payload to the next so that a batch costs no slice of its own.
	decoding []crdt.Op
}

// New returns the replication core of st.
func New(st *crdt.State, cfg Config) *Replica {
	return &Replica{
		st:    st,
		cfg:   cfg.withDefaults(),
		pulls: make(map[string]int64),
		gaps:  make(map[string]string),
	}
}

// State returns the replicated state.
func (r *Replica) State() *crdt.State { return r.st }

// Now returns the replica's ticks so far: the time unit of its tombstones.
func (r *Replica) Now() int64 { return r.now }

// Stats returns the replica's counters.
func (r *Replica) Stats() Stats { return r.stats }

// Publish returns the broadcast id and payload of a local op, to be sent
// with Plumtree's Broadcast on Topic.
func Publish(op *crdt.Op) (id, payload []byte) {
	return MessageID(op.Owner, op.Version()), OpPayload(op)
}

// Batch is one broadcast: its id and payload.
type Batch struct {
	ID, Payload []byte
}

// Batches cuts a run of local ops (in the order the owner made them) into
// as few broadcasts as the limits allow: consecutive ops of one
// incarnation travel together, at most MaxBatchOps and about maxBytes of
// payload each, as a run (crdt.AppendRunOp: each op by what differs from
// the one before). A burst of joins therefore costs a few messages per
// hop, not one per join, and a few bytes per join.
func Batches(ops []crdt.Op, maxBytes int) []Batch {
	var out []Batch
	// Each op is encoded once, into the run's body: the size check and
	// the payload share the encoding.
	var body []byte
	for start := 0; start < len(ops); {
		body = crdt.AppendRunOp(body[:0], &ops[start], nil)
		end := start + 1
		for end < len(ops) && end-start < MaxBatchOps &&
			ops[end].Owner == ops[start].Owner && ops[end].Incarnation == ops[start].Incarnation &&
			ops[end].Seq == ops[end-1].Seq+1 {
			before := len(body)
			body = crdt.AppendRunOp(body, &ops[end], &ops[end-1])
			if len(body) > maxBytes {
				body = body[:before]
				break
			}
			end++
		}
		run := ops[start:end]
		last := &run[len(run)-1]
		b := Batch{ID: MessageID(last.Owner, last.Version())}
		if len(run) == 1 {
			b.Payload = OpPayload(last)
		} else {
			b.Payload = runPayloadOf(run, body)
		}
		out = append(out, b)
		start = end
	}
	return out
}

// Purge records that owner's process of incarnation inc is gone (its
// members leave this replica at once) and returns the tombstone's broadcast
// id and payload, for Plumtree's Broadcast on Topic, so that every replica
// purges it without waiting for its own failure detector. It reports false,
// and nothing to send, when this replica already knew. An owner wrongly
// declared dead refutes when the tombstone reaches it.
func (r *Replica) Purge(owner string, inc uint64) (id, payload []byte, ok bool) {
	if owner == "" || !r.st.Tombstone(owner, inc, r.now) {
		return nil, nil, false
	}
	return DeathID(owner, inc), DeathPayload(owner, inc), true
}

// IdleTicks implements plumtree.IdleTicker: with no pull under way and no
// gap waiting, Tick only counts ticks.
func (r *Replica) IdleTicks() int64 {
	if len(r.pulls) > 0 || len(r.gaps) > 0 {
		return 0
	}
	return math.MaxInt64
}

// Tick advances the replica's time by one tick (Plumtree calls it, the
// replica being a plumtree.Ticker) and pulls again every gap that an
// earlier pull did not fill.
func (r *Replica) Tick() []plumtree.Action {
	r.now++
	for owner, until := range r.pulls {
		if until <= r.now {
			delete(r.pulls, owner)
		}
	}
	if len(r.gaps) == 0 {
		return nil
	}
	owners := make([]string, 0, len(r.gaps))
	for owner := range r.gaps {
		owners = append(owners, owner)
	}
	slices.Sort(owners) // the same actions in the same order on every run
	var acts []plumtree.Action
	for _, owner := range owners {
		if r.st.Pending(owner) == 0 {
			delete(r.gaps, owner)
			continue
		}
		if pull, ok := r.pull(r.gaps[owner], owner); ok {
			acts = append(acts, pull)
		}
	}
	return acts
}

// Merge implements plumtree.Handler: ops, an owner state or a tombstone
// that move their owner forward are New; what this replica already holds,
// refuses or cannot decode is a Duplicate (nothing to forward); ops ahead
// of a gap are Held: they wait in the CRDT's buffer, the replica pulls the
// owner from the peer that sent them, and once the gap is filled the
// owner's state goes on down the tree under the id of its latest version.
// (Forwarding ops ahead of a gap would leave every node below with the
// same gap, each pulling from a parent that lacks the op too.)
func (r *Replica) Merge(from string, id, payload []byte) (plumtree.Verdict, []plumtree.Action) {
	if r.heldAlready(id, payload) {
		// Until the tree is pruned, every eager path brings its copy of a
		// batch: each would cost a decode of every op for nothing.
		r.stats.Duplicates++
		return plumtree.Duplicate, r.refuteIfClaimed(nil)
	}
	p, err := decodePayload(payload, r.decoding)
	if p.ops != nil {
		r.decoding = p.ops
		// Nothing of the ops outlives the merge (the CRDT copies what it
		// keeps); their strings and metadata go with it.
		defer clear(r.decoding)
	}
	if err != nil || !p.matches(id) {
		r.stats.Malformed++
		return plumtree.Duplicate, nil
	}
	var verdict plumtree.Verdict
	var acts []plumtree.Action
	switch {
	case p.ops != nil:
		verdict, acts = r.mergeOps(from, id, p.ops)
	case p.death != nil:
		if r.st.MergeTombstone(p.death.Owner, p.death.Incarnation, r.now) {
			r.stats.Deaths++
			verdict = plumtree.New
		} else {
			r.stats.Duplicates++
			verdict = plumtree.Duplicate
		}
	default:
		verdict = r.count(r.st.MergeOwner(p.state))
		if verdict == plumtree.New {
			acts = r.announceNewer(id, p.state.Owner)
		}
	}
	return verdict, r.refuteIfClaimed(acts)
}

// heldAlready reports whether a payload of ops (one op or a batch) named
// id brings nothing: its ops run up to the version id names, and the
// replica holds the owner's ops through that version. It decides from the
// id alone, before decoding; a state or a tombstone is always decoded (a
// state may carry more than its id names).
func (r *Replica) heldAlready(id, payload []byte) bool {
	if len(payload) == 0 || (payload[0] != payloadOp && payload[0] != payloadBatch && payload[0] != payloadRun) {
		return false
	}
	owner, v, err := parseMessageID(id)
	return err == nil && v.Seq != deathSeq && r.st.Holds(owner, v)
}

// announceNewer passes an owner's state on under the id of its latest
// version when what arrived under id took the owner further than id (a
// graft is answered with the state as it is now; an op that fills a gap
// lets the ops held behind it apply): the protocol forwards the message
// under the id it came with, and the nodes that hold that version already
// would never hear that a newer one exists.
func (r *Replica) announceNewer(id []byte, owner string) []plumtree.Action {
	_, v, err := parseMessageID(id)
	if err != nil {
		return nil
	}
	// The version alone decides; the state (every entry of the owner,
	// sorted) is built only when it goes out. Building it to compare made
	// each batch cost the owner's whole state.
	if cur, ok := r.st.Owner(owner); !ok || !v.Less(cur) {
		return nil
	}
	st, ok := r.st.OwnerState(owner)
	if !ok {
		return nil
	}
	r.stats.Passed++
	return []plumtree.Action{{
		Kind: plumtree.ActBroadcast, Root: owner,
		ID: MessageID(owner, st.Version), Payload: StatePayload(&st),
	}}
}

// mergeOps applies consecutive ops of one owner.
func (r *Replica) mergeOps(from string, id []byte, ops []crdt.Op) (plumtree.Verdict, []plumtree.Action) {
	// A gap that opens after the last one closed is a new gap: its pull
	// must not wait out the previous one's PullTicks. (A burst broadcast
	// as several batches can arrive out of order more than once within a
	// second; a held batch is not passed on and keeps only PendingLimit of
	// its ops, so without a pull the rest waited for a graft.)
	newGap := r.st.Pending(ops[0].Owner) == 0
	run := r.st.ApplyRun(ops)
	applied, buffered, last := run.Applied > 0, run.Buffered > 0, run.Last
	switch {
	case applied:
		// Ops this replica held ahead of the gap may have applied behind
		// these: the nodes below hold none of them yet.
		r.stats.Applied++
		return plumtree.New, r.announceNewer(id, ops[0].Owner)
	case !buffered:
		return r.count(last), nil
	}
	r.stats.Buffered++
	r.gaps[ops[0].Owner] = from
	if newGap {
		delete(r.pulls, ops[0].Owner)
	}
	var acts []plumtree.Action
	if pull, ok := r.pull(from, ops[0].Owner); ok {
		acts = append(acts, pull)
	}
	return plumtree.Held, acts
}

// count turns what the CRDT did into the verdict and counts it.
func (r *Replica) count(res crdt.Result) plumtree.Verdict {
	switch res {
	case crdt.Applied:
		r.stats.Applied++
		return plumtree.New
	case crdt.Refused:
		r.stats.Refused++
	default:
		r.stats.Duplicates++
	}
	return plumtree.Duplicate
}

// pull opens an exchange with peer limited to owner's bucket, unless one
// went out for that owner within PullTicks.
func (r *Replica) pull(peer, owner string) (plumtree.Action, bool) {
	if until, ok := r.pulls[owner]; ok && until > r.now {
		return plumtree.Action{}, false
	}
	r.pulls[owner] = r.now + int64(r.cfg.PullTicks)
	r.stats.Pulls++
	start := r.linesMessage(xLines, []int{crdt.Bucket(owner)})
	r.stats.ExchangeBytes += uint64(len(start))
	return plumtree.Action{Kind: plumtree.ActExchange, Peer: peer, Start: start}, true
}

// refuteIfClaimed answers a peer that holds a tombstone for this node, or
// ops under its name it did not make: the node takes a new incarnation and
// announces its whole state as one message on its own tree.
func (r *Replica) refuteIfClaimed(acts []plumtree.Action) []plumtree.Action {
	if !r.st.NeedsRefute() {
		return acts
	}
	st := r.st.Refute()
	r.stats.Refutes++
	return append(acts, plumtree.Action{
		Kind: plumtree.ActBroadcast, Root: st.Owner,
		ID: MessageID(st.Owner, st.Version), Payload: StatePayload(&st),
	})
}

// IsStale implements plumtree.Handler: an announced op is known when this
// replica holds its owner at that version or later, when it waits ahead of
// a gap, or when its owner is dead at that incarnation.
func (r *Replica) IsStale(id []byte) bool {
	owner, v, err := parseMessageID(id)
	if err != nil {
		return true
	}
	return r.st.Known(owner, v)
}

// Graft implements plumtree.Handler: the payload for a peer that missed
// id is rebuilt from this replica: the owner's state when it holds that
// version or a later one, the tombstone when id names one it holds.
func (r *Replica) Graft(id []byte) ([]byte, bool) {
	owner, v, err := parseMessageID(id)
	if err != nil {
		return nil, false
	}
	if v.Seq == deathSeq {
		if dead, ok := r.st.Tombstoned(owner); ok && dead >= v.Incarnation {
			return DeathPayload(owner, v.Incarnation), true
		}
		return nil, false
	}
	st, ok := r.st.OwnerState(owner)
	if !ok || st.Version.Less(v) {
		return nil, false
	}
	payload := StatePayload(&st)
	if len(payload) > plumtree.MaxPayloadLen {
		return nil, false
	}
	return payload, true
}

// matches reports whether id names the payload: for ops, the last one's
// id; for a tombstone, its own; for a state, the id of a version it
// includes (a graft answers with the state, which may have moved on since
// the announced op).
func (p decoded) matches(id []byte) bool {
	owner, v, err := parseMessageID(id)
	if err != nil {
		return false
	}
	pOwner, pv := p.owner()
	if p.state != nil {
		return owner == pOwner && !pv.Less(v) && v.Seq != deathSeq
	}
	return owner == pOwner && v == pv
}
