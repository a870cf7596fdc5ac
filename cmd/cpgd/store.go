package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// storeFile is the bbolt file inside the data dir.
const storeFile = "cpgd.db"

// storeFormat marks a data file as cpgd's and says which layout it holds;
// a file without it is someone else's and is never written to.
const storeFormat = "cpgd data v1"

// storeLockTimeout bounds the wait for the data file's lock: another cpgd
// holding it is an error at start, not a hang.
const storeLockTimeout = time.Second

var (
	bucketMeta     = []byte("cpgd")
	bucketMembers  = []byte("members")
	bucketLeases   = []byte("leases")
	bucketBindings = []byte("lease-members") // lease id + member key: the members a lease holds

	keyFormat      = []byte("format")
	keyIncarnation = []byte("incarnation")
)

// errStoreClosed answers a write made while the agent stops.
var errStoreClosed = errors.New("data store closed: the agent is stopping")

// store is the agent's durable state in one bbolt file: the node's last
// incarnation, every registration made through this agent and the leases.
// Writes go through update, which commits concurrent callers' writes in one
// transaction and one fsync (group commit).
type store struct {
	db   *bolt.DB
	path string

	mu      sync.Mutex
	pending []*storeWrite
	closing bool
	wake    chan struct{} // cap 1: pending has writes, or the store closes
	done    chan struct{} // the commit loop ended

	commits atomic.Uint64 // transactions committed by update
	writes  atomic.Uint64 // writes those transactions held
}

type storeWrite struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// openStore opens (creating if needed) the data file in dir. A file that is
// not bbolt, is damaged, belongs to another program, or is locked by
// another cpgd is an error saying so.
func openStore(dir string) (s *store, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, storeFile)
	// bbolt panics on some damaged pages instead of returning an error: a
	// damaged file must still be a clear error at start, not a crash.
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("data file %s is damaged (%v): move it away to start with no durable state", path, p)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      storeLockTimeout,
		FreelistType: bolt.FreelistMapType,
		// The free list is written at every commit (NoFreelistSync off):
		// rebuilding it at open walks the pages in a goroutine of bbolt's
		// that panics on a damaged page, beyond any recover of ours.
	})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("data file %s is locked: another cpgd is using this data dir (give each agent its own --data-dir)", path)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
		return nil, fmt.Errorf("data file %s is damaged or not a cpgd data file: %w", path, err)
	case err != nil:
		return nil, fmt.Errorf("open data file %s: %w", path, err)
	}
	if err := checkAndInit(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("data file %s: %w", path, err)
	}
	s = &store{db: db, path: path, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.commitLoop()
	return s, nil
}

// checkAndInit verifies the file's pages and its format mark, and sets up
// an empty file.
func checkAndInit(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("damaged: %w (move it away to start with no durable state)", err)
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			foreign := false
			_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				foreign = true
				return nil
			})
			if foreign {
				return errors.New("not a cpgd data file (it holds other data): give cpgd a --data-dir of its own")
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, []byte(storeFormat)); err != nil {
				return err
			}
		}
		if f := meta.Get(keyFormat); !bytes.Equal(f, []byte(storeFormat)) {
			return fmt.Errorf("format %q, this cpgd reads %q", f, storeFormat)
		}
		for _, b := range [][]byte{bucketMembers, bucketLeases, bucketBindings} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// close waits for the writes under way and closes the file.
func (s *store) close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.kick()
	<-s.done
	return s.db.Close()
}

func (s *store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// update runs fn in a read-write transaction and returns once that
// transaction is on disk (fsynced). Concurrent calls share a transaction:
// the commit loop takes every write queued while the previous commit was
// syncing, so a busy store makes one fsync per group, not per write, and an
// idle one adds no delay. fn may run more than once (when a write grouped
// with it fails, the others run again without it), so it must derive its
// results from tx alone; an fn that returns an error must have written
// nothing it relies on, as its transaction is rolled back.
func (s *store) update(fn func(*bolt.Tx) error) error {
	w := &storeWrite{fn: fn, done: make(chan error, 1)}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errStoreClosed
	}
	s.pending = append(s.pending, w)
	s.mu.Unlock()
	s.kick()
	return <-w.done
}

func (s *store) commitLoop() {
	defer close(s.done)
	var spare []*storeWrite
	for range s.wake {
		s.mu.Lock()
		group, closing := s.pending, s.closing
		s.pending = spare[:0]
		s.mu.Unlock()
		if len(group) > 0 {
			s.commitGroup(group)
		}
		clear(group)
		spare = group
		if closing {
			return
		}
	}
}

// commitGroup commits writes in one transaction. A write whose fn fails
// gets its error alone; the others are committed without it.
func (s *store) commitGroup(writes []*storeWrite) {
	for len(writes) > 0 {
		failed := -1
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, w := range writes {
				if err := w.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			if err == nil {
				s.commits.Add(1)
				s.writes.Add(uint64(len(writes)))
			}
			for _, w := range writes {
				w.done <- err
			}
			return
		}
		writes[failed].done <- err
		writes = append(writes[:failed:failed], writes[failed+1:]...)
	}
}

// nextIncarnation returns the incarnation of this start, max(now, last+1),
// and writes it before returning, so every start outranks the one before
// even when the clock went back.
func (s *store) nextIncarnation(now time.Time) (uint64, error) {
	var inc uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		inc = uint64(now.UnixNano())
		if last := meta.Get(keyIncarnation); last != nil {
			if len(last) != 8 {
				return fmt.Errorf("stored incarnation of %d bytes, want 8", len(last))
			}
			inc = max(inc, binary.BigEndian.Uint64(last)+1)
		}
		return meta.Put(keyIncarnation, binary.BigEndian.AppendUint64(nil, inc))
	})
	if err != nil {
		return 0, fmt.Errorf("data file %s: store the incarnation: %w", s.path, err)
	}
	return inc, nil
}

// memberKey names one member of one group of one scope.
type memberKey struct{ scope, group, member string }

// encode lays the key out as three length-prefixed strings, so no name's
// bytes can be mistaken for a separator.
func (k memberKey) encode() []byte {
	b := make([]byte, 0, 3*binary.MaxVarintLen16+len(k.scope)+len(k.group)+len(k.member))
	for _, s := range []string{k.scope, k.group, k.member} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeMemberKey(b []byte) (memberKey, error) {
	var parts [3]string
	for i := range parts {
		n, used := binary.Uvarint(b)
		if used <= 0 || n > uint64(len(b)-used) {
			return memberKey{}, errors.New("bad member key")
		}
		parts[i] = string(b[used : used+int(n)])
		b = b[used+int(n):]
	}
	if len(b) != 0 {
		return memberKey{}, errors.New("bad member key: trailing bytes")
	}
	return memberKey{parts[0], parts[1], parts[2]}, nil
}

// memberRecord is what the store holds of one member this agent joined.
type memberRecord struct {
	Meta map[string]string `json:"meta,omitempty"`
	// Joins counts the member's joins by the lease they were made with
	// ("" for none); the member's join count is their sum.
	Joins map[string]uint32 `json:"joins"`
}

func (r memberRecord) count() int {
	n := 0
	for _, c := range r.Joins {
		n += int(c)
	}
	return n
}

func (r memberRecord) clone() memberRecord {
	out := memberRecord{Meta: r.Meta, Joins: make(map[string]uint32, len(r.Joins))}
	for l, c := range r.Joins {
		out.Joins[l] = c
	}
	return out
}

func decodeMemberRecord(b []byte) (memberRecord, error) {
	var r memberRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return memberRecord{}, fmt.Errorf("bad member record: %w", err)
	}
	for l, c := range r.Joins {
		if c == 0 || (l != "" && !validLeaseID(l)) {
			return memberRecord{}, fmt.Errorf("bad member record: %d joins under lease %q", c, l)
		}
	}
	return r, nil
}

// leaseRecord is a stored lease. Expires is wall-clock time, so a lease
// that lapsed while the agent was down is seen as lapsed at the next start.
type leaseRecord struct {
	TTL     time.Duration `json:"ttl"`
	Expires int64         `json:"expires"` // Unix nanoseconds
}

func decodeLeaseRecord(b []byte) (leaseRecord, error) {
	var l leaseRecord
	if err := json.Unmarshal(b, &l); err != nil {
		return leaseRecord{}, fmt.Errorf("bad lease record: %w", err)
	}
	if l.TTL < minLeaseTTL || l.TTL > maxLeaseTTL {
		return leaseRecord{}, fmt.Errorf("bad lease record: TTL %v out of bounds", l.TTL)
	}
	return l, nil
}

// putMember stores r as k's record, or deletes it when r holds no joins,
// and keeps the lease bindings in step with before.
func putMember(tx *bolt.Tx, k memberKey, before, r memberRecord) error {
	key := k.encode()
	bindings := tx.Bucket(bucketBindings)
	for l := range before.Joins {
		if _, still := r.Joins[l]; l != "" && !still {
			if err := bindings.Delete(append([]byte(l), key...)); err != nil {
				return err
			}
		}
	}
	for l := range r.Joins {
		if _, had := before.Joins[l]; l != "" && !had {
			if err := bindings.Put(append([]byte(l), key...), nil); err != nil {
				return err
			}
		}
	}
	members := tx.Bucket(bucketMembers)
	if len(r.Joins) == 0 {
		return members.Delete(key)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return members.Put(key, data)
}

// getMember reads k's record; a member with no record has no joins.
func getMember(tx *bolt.Tx, k memberKey) (memberRecord, error) {
	data := tx.Bucket(bucketMembers).Get(k.encode())
	if data == nil {
		return memberRecord{}, nil
	}
	return decodeMemberRecord(data)
}

// member reads k's record outside any write.
func (s *store) member(k memberKey) (r memberRecord, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		r, err = getMember(tx, k)
		return err
	})
	return r, err
}

// leaseMembers lists the members bound to lease id.
func leaseMembers(tx *bolt.Tx, id string) ([]memberKey, error) {
	var keys []memberKey
	prefix := []byte(id)
	c := tx.Bucket(bucketBindings).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		mk, err := decodeMemberKey(k[len(prefix):])
		if err != nil {
			return nil, err
		}
		keys = append(keys, mk)
	}
	return keys, nil
}

// storedState is the whole store as read at start.
type storedState struct {
	members map[memberKey]memberRecord
	leases  map[string]leaseRecord
}

// load reads every record; a record it cannot decode is an error naming
// it, since dropping it silently would lose an acknowledged registration.
func (s *store) load() (st storedState, err error) {
	st = storedState{members: make(map[memberKey]memberRecord), leases: make(map[string]leaseRecord)}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("data file %s is damaged (%v): move it away to start with no durable state", s.path, p)
		}
	}()
	err = s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketLeases).ForEach(func(k, v []byte) error {
			l, err := decodeLeaseRecord(v)
			if err != nil || !validLeaseID(string(k)) {
				return fmt.Errorf("lease %q: %v", k, err)
			}
			st.leases[string(k)] = l
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketMembers).ForEach(func(k, v []byte) error {
			mk, err := decodeMemberKey(k)
			if err != nil {
				return err
			}
			r, err := decodeMemberRecord(v)
			if err != nil {
				return fmt.Errorf("member %q of %q in scope %q: %w", mk.member, mk.group, mk.scope, err)
			}
			st.members[mk] = r
			return nil
		})
	})
	if err != nil {
		return storedState{}, fmt.Errorf("data file %s: %w", s.path, err)
	}
	return st, nil
}
