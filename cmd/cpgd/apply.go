package main

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cpggo/cpg/registry"
)

// changeKind names the changes a client makes through the API.
type changeKind uint8

const (
	changeJoin changeKind = iota + 1
	changeLeave
	changeMeta // replace the member's metadata; an empty map clears it
)

// change is one registration change a client asked for.
type change struct {
	kind          changeKind
	scope         *registry.Scope
	group, member string
	meta          registry.Meta
	// lease, when not empty, is the lease a join is bound to: the member
	// leaves when the lease lapses or is revoked. On a leave it says which
	// of the member's joins to take back.
	lease string
}

// durable makes the changes clients ask for durable: it records each in
// the store before the registry makes it, keeps the leases, and brings the
// stored registrations back at start.
type durable struct {
	store *store
	node  *registry.Node
	log   *slog.Logger
	now   func() time.Time

	// locks serialise the changes of one member (by a hash of its key),
	// so the registry makes them in the order the store recorded them.
	locks [4096]sync.Mutex
	seed  maphash.Seed

	leases leaseTable
}

func newDurable(st *store, node *registry.Node, log *slog.Logger) *durable {
	return &durable{store: st, node: node, log: log, now: time.Now, seed: maphash.MakeSeed(), leases: leaseTable{byID: make(map[string]leaseRecord)}}
}

// lockMembers locks the stripes of keys in a fixed order (so two callers
// locking several never deadlock) and returns the unlock.
func (d *durable) lockMembers(keys ...memberKey) func() {
	stripes := make([]int, 0, len(keys))
	for _, k := range keys {
		stripes = append(stripes, d.stripe(k))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes {
		d.locks[s].Lock()
	}
	return func() {
		for _, s := range stripes {
			d.locks[s].Unlock()
		}
	}
}

// stripe is the lock of k's member. A client's change holds it across its
// fsync, so two members sharing a stripe wait for each other's: with 4,096
// stripes, 64 concurrent clients rarely do (about one pair at a time,
// against eight with 256).
func (d *durable) stripe(k memberKey) int {
	var h maphash.Hash
	h.SetSeed(d.seed)
	h.WriteString(k.scope)
	h.WriteByte(0)
	h.WriteString(k.group)
	h.WriteByte(0)
	h.WriteString(k.member)
	return int(h.Sum64() % uint64(len(d.locks)))
}

// applyChange makes a client's change and returns the member's join count
// after it. The order keeps both promises of the API, "nothing acknowledged
// is lost" and "a refused change changes nothing":
//
//  1. validate: names, metadata, the lease, and (from the store) whether
//     the member is there to leave; a refusal here touches nothing (a
//     join, which only its count limit refuses, is checked within 2);
//  2. write the member's new record and wait for its fsync (grouped with
//     concurrent changes);
//  3. make the change in the registry, which replicates it. Should the
//     registry still refuse it (the node is closing), the record is put
//     back as it was, so the refused change leaves nothing behind.
//
// Writing before applying means no other node ever sees a change that
// could be lost: a crash between 2 and 3 loses no answer given (none was),
// and the change comes back at the next start. The member's lock is held
// throughout so the registry makes one member's changes in the order the
// store recorded them.
func (a *api) applyChange(_ context.Context, c change) (int, error) {
	return a.durable.apply(c)
}

func (d *durable) apply(c change) (int, error) {
	if err := registry.ValidateChange(c.group, c.member, c.meta); err != nil {
		return 0, err
	}
	if c.lease != "" && c.kind == changeMeta {
		return 0, fmt.Errorf("%w: a metadata change takes no lease", errBadRequest)
	}
	if c.kind == changeJoin && c.lease != "" && !d.leases.live(c.lease, d.now()) {
		return 0, fmt.Errorf("%w %q", errNoSuchLease, c.lease)
	}
	k := memberKey{c.scope.Name(), c.group, c.member}
	lock := &d.locks[d.stripe(k)]
	lock.Lock()
	defer lock.Unlock()
	// The member's lock keeps its record what prepare reads until the
	// write: the change is worked out and encoded here, in the client's
	// goroutine, and the commit loop only checks it still applies.
	w := &changeWrite{c: c, k: k, now: d.now()}
	if err := w.prepare(&d.store.index); err != nil {
		return 0, err
	}
	// A leave or metadata change of a member that is not there is
	// refused at once, not after waiting for a commit (a join, which only
	// its count limit refuses, is refused within its write).
	if c.kind != changeJoin && w.refused != nil {
		return 0, w.refused
	}
	if err := d.store.updateWith(w); err != nil {
		return 0, err
	}
	if w.refused != nil {
		return 0, w.refused
	}
	if err := applyToRegistry(c); err != nil {
		if uerr := d.store.updateWith(recordWrite{k, w.before}); uerr != nil {
			d.log.Error("a change the registry refused stays on disk and comes back at the next start", "scope", k.scope, "group", k.group, "member", k.member, "refused", err, "error", uerr)
		}
		return 0, err
	}
	return w.after.count(), nil
}

// changeWrite is a client's change as the store writes it, with the
// member's record it found and the one it wrote.
type changeWrite struct {
	c   change
	k   memberKey
	now time.Time
	// seen is where the record before lies in the log (0: none); a
	// sequence number names one record for good, so a write that still
	// sees it there needs to work nothing out again.
	seen          uint64
	before, after memberRecord
	entry         memberEntry // after, encoded
	refused       error       // the change is refused: nothing is written
}

// prepare works the change out from the member's record as last
// committed.
func (w *changeWrite) prepare(x *memberIndex) error {
	seq, before, err := x.getWithSeq(w.k)
	if err != nil {
		return fmt.Errorf("read the member's record: %w", err)
	}
	return w.workOut(seq, before)
}

func (w *changeWrite) workOut(seq uint64, before memberRecord) error {
	w.seen, w.before = seq, before
	if w.after, w.refused = nextRecord(before, w.c); w.refused != nil {
		return nil
	}
	var err error
	w.entry, err = encodeEntry(w.k, w.after)
	return err
}

func (w *changeWrite) write(tx *storeTx) error {
	// The lease may have been revoked since apply checked it; once
	// revocation removed it, no join may bind to it.
	if w.c.kind == changeJoin && w.c.lease != "" && !leaseLiveIn(tx.tx, w.c.lease, w.now) {
		return fmt.Errorf("%w %q", errNoSuchLease, w.c.lease)
	}
	var buf keyBuffer
	e, ok := tx.lookup(w.k.appendEncoded(buf[:0]))
	if !ok {
		e = indexedMember{}
	}
	if e.seq != w.seen {
		// Not the record prepare read: only the index's rebuild after a
		// failed commit moves it while the member's lock is held. The
		// change is worked out again from what this transaction sees.
		before := memberRecord{}
		if ok {
			var err error
			if before, err = decodeRecord(e.record); err != nil {
				return fmt.Errorf("read the member's record: %w", err)
			}
		}
		if err := w.workOut(e.seq, before); err != nil {
			return err
		}
	}
	// A refused change writes nothing and is answered alone; the writes
	// grouped with it go on.
	if w.refused != nil {
		return nil
	}
	return tx.putEntry(w.entry, w.after)
}

// recordWrite stores one member's record as given.
type recordWrite struct {
	k memberKey
	r memberRecord
}

func (w recordWrite) write(tx *storeTx) error { return putMember(tx, w.k, w.r) }

func applyToRegistry(c change) error {
	switch c.kind {
	case changeJoin:
		return c.scope.Join(c.group, c.member, c.meta)
	case changeLeave:
		return c.scope.Leave(c.group, c.member)
	case changeMeta:
		return c.scope.SetMeta(c.group, c.member, c.meta)
	}
	return fmt.Errorf("unknown change kind %d", c.kind)
}

var (
	// errNoSuchLease: a join or leave names a lease that does not exist or
	// has lapsed.
	errNoSuchLease = errors.New("no such lease")
	// errBadRequest: a request the API refuses as malformed.
	errBadRequest = errors.New("bad request")
)

// nextRecord is the member's record after c, or why c is refused. It
// follows the registry's rules: a join adds one to the count and replaces
// the metadata when it brings some; a leave takes one join back (404 when
// there is none); a metadata change needs the member to be there.
func nextRecord(before memberRecord, c change) (memberRecord, error) {
	after := before.clone()
	switch c.kind {
	case changeJoin:
		if after.count() >= maxJoins {
			return memberRecord{}, fmt.Errorf("%w: %q already joined %q %d times", registry.ErrInvalidMember, c.member, c.group, maxJoins)
		}
		after.Joins[c.lease]++
		if len(c.meta) > 0 {
			after.Meta = maps.Clone(c.meta)
		}
	case changeLeave:
		lease, ok := joinToTakeBack(before, c.lease)
		if !ok {
			if c.lease != "" {
				return memberRecord{}, fmt.Errorf("%w: %q has no join in %q under lease %q", registry.ErrNotMember, c.member, c.group, c.lease)
			}
			return memberRecord{}, fmt.Errorf("%w: %q of group %q", registry.ErrNotMember, c.member, c.group)
		}
		if after.Joins[lease]--; after.Joins[lease] == 0 {
			delete(after.Joins, lease)
		}
		if len(after.Joins) == 0 {
			after.Meta = nil
		}
	case changeMeta:
		if before.count() == 0 {
			return memberRecord{}, fmt.Errorf("%w: %q of group %q", registry.ErrNotMember, c.member, c.group)
		}
		after.Meta = nil
		if len(c.meta) > 0 {
			after.Meta = maps.Clone(c.meta)
		}
	}
	return after, nil
}

// maxJoins bounds one member's join count, far below the registry's
// 32-bit count, so every stored join can be replayed at start.
const maxJoins = 1 << 16

// joinToTakeBack chooses which of the member's joins a leave takes back:
// one under the named lease, or with none named, a join made without a
// lease if there is one, else one under the lease that sorts first.
func joinToTakeBack(r memberRecord, lease string) (string, bool) {
	if lease != "" || r.Joins[""] > 0 {
		return lease, r.Joins[lease] > 0
	}
	leases := slices.Sorted(maps.Keys(r.Joins))
	if len(leases) == 0 {
		return "", false
	}
	return leases[0], true
}

// restore brings back the registrations of the previous run: the joins
// under a lease that lapsed meanwhile are dropped (and erased from the
// store), every other join is made again in the registry, under this
// run's incarnation. It runs before the API answers.
func (d *durable) restore() error {
	st, err := d.store.load()
	if err != nil {
		return err
	}
	now := d.now()
	lapsed := make(map[string]bool)
	for id, l := range st.leases {
		if !leaseLive(l, now) {
			lapsed[id] = true
			continue
		}
		d.leases.put(id, l)
	}
	type fix struct {
		key   memberKey
		after memberRecord
	}
	var fixes []fix
	members, joins := 0, 0
	for k, r := range st.members {
		after := r.clone()
		for l := range r.Joins {
			if _, live := d.leases.byID[l]; l != "" && !live {
				delete(after.Joins, l)
			}
		}
		if len(after.Joins) != len(r.Joins) {
			fixes = append(fixes, fix{k, after})
		}
		if after.count() == 0 {
			continue
		}
		if err := d.replay(k, after); err != nil {
			return err
		}
		members++
		joins += after.count()
	}
	if len(fixes) > 0 || len(lapsed) > 0 {
		err := d.store.update(func(tx *storeTx) error {
			for id := range lapsed {
				if err := tx.tx.Bucket(bucketLeases).Delete([]byte(id)); err != nil {
					return err
				}
			}
			for _, f := range fixes {
				if err := putMember(tx, f.key, f.after); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("erase the registrations of lapsed leases: %w", err)
		}
	}
	d.log.Info("durable state restored", "members", members, "joins", joins, "leases", len(d.leases.byID), "lapsed_leases", len(lapsed), "data", d.store.path)
	return nil
}

// replay makes a stored member's joins again in the registry.
func (d *durable) replay(k memberKey, r memberRecord) error {
	s, err := d.node.Scope(k.scope)
	if err != nil {
		return fmt.Errorf("restore scope %q: %w", k.scope, err)
	}
	meta := registry.Meta(r.Meta)
	for range r.count() {
		if err := s.Join(k.group, k.member, meta); err != nil {
			return fmt.Errorf("restore member %q of %q in scope %q: %w", k.member, k.group, k.scope, err)
		}
		meta = nil
	}
	return nil
}
