package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bounds on a lease's TTL: under a second, keepalives would be most of the
// traffic; over a day, a lapsed client's members would linger for a day.
const (
	minLeaseTTL = time.Second
	maxLeaseTTL = 24 * time.Hour
)

// leaseCheckEvery is how often lapsed leases are looked for: a lease's
// members leave at most this long after its deadline.
const leaseCheckEvery = 100 * time.Millisecond

// maxLeases bounds the live leases of one agent, so clients that grant
// leases and never revoke them cannot grow its memory and data file
// without end.
const maxLeases = 100_000

// leaseIDLen is the length of a lease ID: 16 hex digits (64 random bits).
const leaseIDLen = 16

func newLeaseID() string {
	var b [leaseIDLen / 2]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func validLeaseID(id string) bool {
	if len(id) != leaseIDLen {
		return false
	}
	for i := range len(id) {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// leaseLive reports whether l has not lapsed at now.
func leaseLive(l leaseRecord, now time.Time) bool { return now.UnixNano() < l.Expires }

// leaseLiveIn reports whether lease id is stored and has not lapsed.
func leaseLiveIn(tx *bolt.Tx, id string, now time.Time) bool {
	data := tx.Bucket(bucketLeases).Get([]byte(id))
	if data == nil {
		return false
	}
	l, err := decodeLeaseRecord(data)
	return err == nil && leaseLive(l, now)
}

// leaseTable is the live leases in memory, mirroring the store, so a join
// with an unknown lease is refused without a disk write and lapsed leases
// are found without a scan of the file.
type leaseTable struct {
	mu   sync.Mutex
	byID map[string]leaseRecord
	// counted, if set, hears the number of leases after each change.
	counted func(n int)
}

// observe has counted hear the number of leases, now and after each change.
func (t *leaseTable) observe(counted func(n int)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counted = counted
	counted(len(t.byID))
}

func (t *leaseTable) put(id string, l leaseRecord) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byID[id] = l
	if t.counted != nil {
		t.counted(len(t.byID))
	}
}

func (t *leaseTable) get(id string) (leaseRecord, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.byID[id]
	return l, ok
}

func (t *leaseTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// renew sets lease id's record if the lease is still there (a revocation
// may have taken it meanwhile: it stays gone).
func (t *leaseTable) renew(id string, l leaseRecord) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.byID[id]; ok {
		t.byID[id] = l
	}
}

func (t *leaseTable) live(id string, now time.Time) bool {
	l, ok := t.get(id)
	return ok && leaseLive(l, now)
}

// take removes lease id and reports whether it was there.
func (t *leaseTable) take(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.byID[id]
	delete(t.byID, id)
	if ok && t.counted != nil {
		t.counted(len(t.byID))
	}
	return ok
}

// lapsed returns the leases whose deadline is at or before now, in ID
// order.
func (t *leaseTable) lapsed(now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for id, l := range t.byID {
		if !leaseLive(l, now) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// grant creates a lease of ttl, stored before it is returned.
func (d *durable) grant(ttl time.Duration) (string, leaseRecord, error) {
	if ttl < minLeaseTTL || ttl > maxLeaseTTL {
		return "", leaseRecord{}, fmt.Errorf("%w: ttl %v: want %v to %v", errBadRequest, ttl, minLeaseTTL, maxLeaseTTL)
	}
	if d.leases.count() >= maxLeases {
		return "", leaseRecord{}, fmt.Errorf("%w: %d live leases, the most an agent keeps: revoke leases no longer used", errTooManyLeases, maxLeases)
	}
	id := newLeaseID()
	l := leaseRecord{TTL: ttl, Expires: d.now().Add(ttl).UnixNano()}
	data, _ := json.Marshal(l)
	err := d.store.update(func(tx *storeTx) error {
		return tx.tx.Bucket(bucketLeases).Put([]byte(id), data)
	})
	if err != nil {
		return "", leaseRecord{}, err
	}
	d.leases.put(id, l)
	return id, l, nil
}

// keepAlive moves lease id's deadline to now plus its TTL.
func (d *durable) keepAlive(id string) (leaseRecord, error) {
	l, ok := d.leases.get(id)
	now := d.now()
	if !ok || !leaseLive(l, now) {
		return leaseRecord{}, fmt.Errorf("%w %q", errNoSuchLease, id)
	}
	l.Expires = now.Add(l.TTL).UnixNano()
	data, _ := json.Marshal(l)
	err := d.store.update(func(tx *storeTx) error {
		// Revoked (or lapsed and revoked) meanwhile: it stays gone.
		if tx.tx.Bucket(bucketLeases).Get([]byte(id)) == nil {
			return fmt.Errorf("%w %q", errNoSuchLease, id)
		}
		return tx.tx.Bucket(bucketLeases).Put([]byte(id), data)
	})
	if err != nil {
		return leaseRecord{}, err
	}
	d.leases.renew(id, l)
	return l, nil
}

// revoke ends lease id: it is erased first, so no join binds to it any
// more, then every join made under it is taken back, in the store and in
// the registry (a normal leave of this node's member, which replicates).
// It returns how many joins it took back.
func (d *durable) revoke(id string) (int, error) {
	if !d.leases.take(id) {
		return 0, fmt.Errorf("%w %q", errNoSuchLease, id)
	}
	var keys []memberKey
	err := d.store.update(func(tx *storeTx) error {
		var err error
		keys, err = leaseMembers(tx, id)
		if err != nil {
			return err
		}
		return tx.tx.Bucket(bucketLeases).Delete([]byte(id))
	})
	if err != nil {
		return 0, err
	}
	if len(keys) == 0 {
		return 0, nil
	}
	// No join can bind to the lease any more, so keys is all it holds.
	unlock := d.lockMembers(keys...)
	defer unlock()
	type release struct {
		key           memberKey
		before, after memberRecord
	}
	var releases []release
	err = d.store.update(func(tx *storeTx) error {
		releases = releases[:0]
		for _, k := range keys {
			before, err := getMember(tx, k)
			if err != nil {
				return err
			}
			after := before.clone()
			delete(after.Joins, id)
			if len(after.Joins) == 0 {
				after.Meta = nil
			}
			if err := putMember(tx, k, after); err != nil {
				return err
			}
			releases = append(releases, release{k, before, after})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("release the members of lease %q: %w", id, err)
	}
	left := 0
	for _, r := range releases {
		s, err := d.node.Scope(r.key.scope)
		if err != nil {
			return left, err
		}
		for range r.before.count() - r.after.count() {
			if err := s.Leave(r.key.group, r.key.member); err != nil {
				// Only a closing node refuses: the store already says
				// the joins are gone, so they do not come back.
				return left, fmt.Errorf("leave of %q from %q (lease %q): %w", r.key.member, r.key.group, id, err)
			}
			left++
		}
	}
	return left, nil
}

// expireLeases revokes lapsed leases until ctx ends.
func (d *durable) expireLeases(ctx context.Context) {
	t := time.NewTicker(leaseCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.expireLapsed(ctx)
	}
}

// expireLapsed revokes every lease whose deadline has passed.
func (d *durable) expireLapsed(ctx context.Context) {
	for _, id := range d.leases.lapsed(d.now()) {
		left, err := d.revoke(id)
		switch {
		case err == nil:
			d.log.Debug("lease lapsed", "lease", id, "left", left)
		case ctx.Err() == nil:
			d.log.Warn("lease lapsed, its members could not all leave", "lease", id, "error", err)
		}
	}
}

// errTooManyLeases: a grant beyond maxLeases.
var errTooManyLeases = errors.New("too many leases")

// leaseJSON is a lease as the API shows it.
type leaseJSON struct {
	ID      string    `json:"id"`
	TTL     string    `json:"ttl"`
	Expires time.Time `json:"expires"`
	// Members, shown by GET, are the members joined under the lease.
	Members []leasedMember `json:"members,omitempty"`
}

type leasedMember struct {
	Scope  string `json:"scope"`
	Group  string `json:"group"`
	Member string `json:"member"`
	Count  uint32 `json:"count"` // joins made under this lease
}

func toLeaseJSON(id string, l leaseRecord) leaseJSON {
	return leaseJSON{ID: id, TTL: l.TTL.String(), Expires: time.Unix(0, l.Expires).UTC()}
}

type leaseRequest struct {
	TTL string `json:"ttl"`
}

func (a *api) leaseRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/leases", a.grantLease)
	mux.HandleFunc("GET /v1/leases/{id}", a.showLease)
	mux.HandleFunc("POST /v1/leases/{id}/keepalive", a.keepAliveLease)
	mux.HandleFunc("DELETE /v1/leases/{id}", a.revokeLease)
}

func (a *api) grantLease(w http.ResponseWriter, r *http.Request) {
	var req leaseRequest
	if !decode(w, r, &req) {
		return
	}
	ttl, err := time.ParseDuration(req.TTL)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("ttl %q: want a duration such as \"10s\"", req.TTL)})
		return
	}
	id, l, err := a.durable.grant(ttl)
	if errors.Is(err, errTooManyLeases) {
		writeJSON(w, http.StatusTooManyRequests, errorBody{err.Error()})
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toLeaseJSON(id, l))
}

// leaseID reads the path's lease ID; a malformed one is a lease that does
// not exist.
func leaseID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !validLeaseID(id) {
		writeError(w, fmt.Errorf("%w %q", errNoSuchLease, id))
		return "", false
	}
	return id, true
}

func (a *api) showLease(w http.ResponseWriter, r *http.Request) {
	id, ok := leaseID(w, r)
	if !ok {
		return
	}
	l, ok := a.durable.leases.get(id)
	if !ok {
		writeError(w, fmt.Errorf("%w %q", errNoSuchLease, id))
		return
	}
	out := toLeaseJSON(id, l)
	keys, records, err := a.durable.store.index.leaseHolders(id)
	for i, k := range keys {
		out.Members = append(out.Members, leasedMember{Scope: k.scope, Group: k.group, Member: k.member, Count: records[i].Joins[id]})
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) keepAliveLease(w http.ResponseWriter, r *http.Request) {
	id, ok := leaseID(w, r)
	if !ok {
		return
	}
	l, err := a.durable.keepAlive(id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toLeaseJSON(id, l))
}

func (a *api) revokeLease(w http.ResponseWriter, r *http.Request) {
	id, ok := leaseID(w, r)
	if !ok {
		return
	}
	left, err := a.durable.revoke(id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "revoked": true, "left": left})
}
