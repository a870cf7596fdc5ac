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
// a file without it is someone else's and is never written to. A file of
// the previous layout (storeFormatV1) is converted at open.
const storeFormat = "cpgd data v2"

// storeLockTimeout bounds the wait for the data file's lock: another cpgd
// holding it is an error at start, not a hang.
const storeLockTimeout = time.Second

var (
	bucketMeta    = []byte("cpgd")
	bucketRecords = []byte("member-log") // sequence number: member key + record (memberlog.go)
	bucketLeases  = []byte("leases")

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

	// index is where each member's record lies in the log, and its
	// record: what the file holds, in memory (memberlog.go).
	index memberIndex

	mu sync.Mutex
	// filling is the batch update adds writes to; the commit loop takes
	// it and leaves an empty one in its place.
	filling *storeBatch
	closing bool
	broken  error         // set when the index could not be read again after a failed commit
	wake    chan struct{} // cap 1: filling has writes, or the store closes
	done    chan struct{} // the commit loop ended

	commits atomic.Uint64 // transactions committed by update
	writes  atomic.Uint64 // writes those transactions held
}

// storeBatch is the writes one commit takes. They learn of it together:
// one channel closed per commit, rather than one sent to per write, keeps
// the commit loop's turn between two commits short (it is the store's
// one serial step) and allocates nothing per write.
type storeBatch struct {
	writes []storeWrite
	done   chan struct{} // closed once every write has its err
}

func newStoreBatch(capacity int) *storeBatch {
	return &storeBatch{writes: make([]storeWrite, 0, capacity), done: make(chan struct{})}
}

type storeWrite struct {
	w   storeWriter
	err error // the write's outcome, once the batch's done is closed
}

// storeWriter is one write of a group commit (see update).
type storeWriter interface{ write(*storeTx) error }

// storeFunc is a write given as a function.
type storeFunc func(*storeTx) error

func (f storeFunc) write(tx *storeTx) error { return f(tx) }

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
	s = &store{db: db, path: path, filling: newStoreBatch(0), wake: make(chan struct{}, 1), done: make(chan struct{})}
	if err := db.View(func(tx *bolt.Tx) error { return s.index.rebuild(tx) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("data file %s: %w", path, err)
	}
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
		if f := meta.Get(keyFormat); bytes.Equal(f, []byte(storeFormatV1)) {
			if err := convertFromV1(tx); err != nil {
				return fmt.Errorf("convert from %q: %w", storeFormatV1, err)
			}
		}
		if f := meta.Get(keyFormat); !bytes.Equal(f, []byte(storeFormat)) {
			return fmt.Errorf("format %q, this cpgd reads %q", f, storeFormat)
		}
		for _, b := range [][]byte{bucketRecords, bucketLeases} {
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
// transaction is on disk (fsynced) and the index says what it wrote. Concurrent calls share a transaction:
// the commit loop takes every write queued while the previous commit was
// syncing, so a busy store makes one fsync per group, not per write, and an
// idle one adds no delay. fn may run more than once (when a write grouped
// with it fails, the others run again without it), so it must derive its
// results from tx alone; an fn that returns an error must have written
// nothing it relies on, as its transaction is rolled back.
func (s *store) update(fn func(*storeTx) error) error { return s.updateWith(storeFunc(fn)) }

// updateWith is update of a write that carries its own state: a caller
// on the hot path then allocates one value for the write and what it
// found, rather than a closure and each variable it sets.
func (s *store) updateWith(w storeWriter) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errStoreClosed
	}
	if s.broken != nil {
		s.mu.Unlock()
		return s.broken
	}
	b := s.filling
	i := len(b.writes)
	b.writes = append(b.writes, storeWrite{w: w})
	s.mu.Unlock()
	s.kick()
	<-b.done
	return b.writes[i].err
}

func (s *store) commitLoop() {
	defer close(s.done)
	for range s.wake {
		s.mu.Lock()
		b, closing := s.filling, s.closing
		// Taken only when it holds writes: an empty batch stays the one
		// writers add to, so nothing of it may be read after the unlock.
		taken := len(b.writes) > 0
		if taken {
			// Room for as many writes as this commit takes: the next
			// batch rarely grows its array.
			s.filling = newStoreBatch(len(b.writes))
		}
		s.mu.Unlock()
		if taken {
			s.commitGroup(b.writes)
			close(b.done)
		}
		if closing {
			return
		}
	}
}

// commitGroup commits writes in one transaction and sets each one's err.
// A write whose fn fails gets its error alone; the others are committed
// without it.
func (s *store) commitGroup(writes []storeWrite) {
	left := len(writes)
	for left > 0 {
		failed := -1
		// Sized for one record a write, so that the map does not grow
		// (and rehash) while the commit loop, the store's serial step,
		// fills it.
		stx := storeTx{index: &s.index, changed: make(map[string]indexedMember, left)}
		err := s.db.Update(func(tx *bolt.Tx) error {
			stx.tx = tx
			for i := range writes {
				w := &writes[i]
				if w.err != nil {
					continue // refused in an earlier try
				}
				if err := w.w.write(&stx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			writes[failed].err = err
			left--
			continue
		}
		if err == nil {
			// Before any writer hears of its commit, so its next
			// read sees what it wrote.
			s.index.commit(stx.changed)
			s.commits.Add(1)
			s.writes.Add(uint64(left))
			return
		}
		s.resync()
		for i := range writes {
			if writes[i].err == nil {
				writes[i].err = err
			}
		}
		return
	}
}

// resync reads the index again from the file after a commit failed:
// whether the failed commit's pages reached the disk is unknown (its meta
// page may have been written before its sync failed), and bbolt may read
// them back as committed. An index that disagreed with the file could
// write a second record of one member. Should the file not be readable,
// every later write fails: a restart reads the file afresh.
func (s *store) resync() {
	var fresh memberIndex
	err := s.db.View(func(tx *bolt.Tx) error { return fresh.rebuild(tx) })
	if err != nil {
		s.mu.Lock()
		s.broken = fmt.Errorf("data file %s: a commit failed and the file could not be read again (%w): restart the agent", s.path, err)
		s.mu.Unlock()
		return
	}
	s.index.mu.Lock()
	s.index.members, s.index.byLease = fresh.members, fresh.byLease
	s.index.mu.Unlock()
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

// member reads k's record outside any write, as last committed.
func (s *store) member(k memberKey) (memberRecord, error) {
	return s.index.get(k)
}

// storedState is the whole store: every member's record and the leases.
type storedState struct {
	members map[memberKey]memberRecord
	leases  map[string]leaseRecord
}

// load reads every record as last committed; a lease it cannot decode is
// an error naming it, since dropping it silently would lose its joins.
func (s *store) load() (st storedState, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("data file %s is damaged (%v): move it away to start with no durable state", s.path, p)
		}
	}()
	st.members, err = s.index.snapshot()
	if err != nil {
		return storedState{}, fmt.Errorf("data file %s: %w", s.path, err)
	}
	st.leases = make(map[string]leaseRecord)
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLeases).ForEach(func(k, v []byte) error {
			l, err := decodeLeaseRecord(v)
			if err != nil || !validLeaseID(string(k)) {
				return fmt.Errorf("lease %q: %v", k, err)
			}
			st.leases[string(k)] = l
			return nil
		})
	})
	if err != nil {
		return storedState{}, fmt.Errorf("data file %s: %w", s.path, err)
	}
	return st, nil
}
