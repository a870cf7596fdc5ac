package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/cpggo/cpg/registry"
)

func openTestStore(t *testing.T, dir string) *store {
	t.Helper()
	s, err := openStore(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.close() })
	return s
}

// A data file that is not ours, damaged, or held by another agent is a
// clear error at open, never a crash or a hang.
func TestStoreRefusesFilesItCannotUse(t *testing.T) {
	t.Run("garbage", func(t *testing.T) {
		dir := t.TempDir()
		garbage := make([]byte, 64<<10)
		for i := range garbage {
			garbage[i] = byte(i*7 + i>>8)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, storeFile), garbage, 0o600))
		_, err := openStore(dir)
		require.ErrorContains(t, err, "damaged or not a cpgd data file")
	})
	t.Run("damaged pages", func(t *testing.T) {
		dir := t.TempDir()
		s, err := openStore(dir)
		require.NoError(t, err)
		// Enough records to spread over many pages, then scribble over
		// the pages past the two meta pages.
		require.NoError(t, s.update(func(tx *storeTx) error {
			for i := range 2000 {
				k := memberKey{"default", "/g", string(rune('a'+i%26)) + string(rune(i))}
				if err := putMember(tx, k, memberRecord{Joins: map[string]uint32{"": 1}}); err != nil {
					return err
				}
			}
			return nil
		}))
		require.NoError(t, s.close())
		path := filepath.Join(dir, storeFile)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		page := os.Getpagesize()
		for i := 2 * page; i < len(data); i += 7 {
			data[i] ^= 0x5a
		}
		require.NoError(t, os.WriteFile(path, data, 0o600))
		_, err = openStore(dir)
		require.ErrorContains(t, err, "damaged")
	})
	t.Run("foreign", func(t *testing.T) {
		dir := t.TempDir()
		db, err := bolt.Open(filepath.Join(dir, storeFile), 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("someone else's"))
			return err
		}))
		require.NoError(t, db.Close())
		_, err = openStore(dir)
		require.ErrorContains(t, err, "not a cpgd data file")
	})
	t.Run("other format", func(t *testing.T) {
		dir := t.TempDir()
		s := openTestStore(t, dir)
		require.NoError(t, s.update(func(tx *storeTx) error {
			return tx.tx.Bucket(bucketMeta).Put(keyFormat, []byte("cpgd data v99"))
		}))
		require.NoError(t, s.close())
		_, err := openStore(dir)
		require.ErrorContains(t, err, `format "cpgd data v99"`)
	})
	t.Run("locked", func(t *testing.T) {
		dir := t.TempDir()
		openTestStore(t, dir)
		start := time.Now()
		_, err := openStore(dir)
		require.ErrorContains(t, err, "locked: another cpgd is using this data dir")
		require.Less(t, time.Since(start), 5*storeLockTimeout, "a locked file is an error soon, not a hang")
	})
}

// Every start's incarnation outranks the one before, even when the clock
// went back between them.
func TestStoreIncarnationAlwaysGrows(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	s := openTestStore(t, dir)
	first, err := s.nextIncarnation(now)
	require.NoError(t, err)
	require.Equal(t, uint64(now.UnixNano()), first)
	require.NoError(t, s.close())

	s = openTestStore(t, dir)
	second, err := s.nextIncarnation(now.Add(-time.Hour))
	require.NoError(t, err)
	require.Equal(t, first+1, second, "a clock that went back still gives a greater incarnation")
	third, err := s.nextIncarnation(now.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, uint64(now.Add(time.Hour).UnixNano()), third)
}

// 64 concurrent joiners share fsyncs: the store commits far fewer
// transactions than it is given joins, and loses none of them.
func TestGroupCommitSharesFsyncsAmongJoiners(t *testing.T) {
	a := startDurable(t, t.TempDir(), time.Now())
	const joiners, each = 64, 20
	var wg sync.WaitGroup
	for w := range joiners {
		wg.Go(func() {
			for i := range each {
				_, err := a.apply(changeJoin, fmt.Sprintf("/g/%d", w), fmt.Sprintf("m-%d", i), "", nil)
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.Len(t, a.stored().members, joiners*each)
	_, members := a.scope().Size()
	require.Equal(t, joiners*each, members)
	commits, writes := a.store.commits.Load(), a.store.writes.Load()
	require.Equal(t, uint64(joiners*each), writes)
	t.Logf("%d joins in %d commits (%.1f a commit)", writes, commits, float64(writes)/float64(commits))
	require.LessOrEqual(t, commits*4, writes, "at least four joins share each fsync on average")
}

// A write that fails gets its error alone: the others of its group are
// committed.
func TestStoreFailedWriteDoesNotFailItsGroup(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Go(func() {
			k := memberKey{"default", "/g", string(rune('a' + i))}
			errs[i] = s.update(func(tx *storeTx) error {
				if err := putMember(tx, k, memberRecord{Joins: map[string]uint32{"": 1}}); err != nil {
					return err
				}
				if i%2 == 1 {
					return errNoSuchLease
				}
				return nil
			})
		})
	}
	wg.Wait()
	st, err := s.load()
	require.NoError(t, err)
	for i, err := range errs {
		_, stored := st.members[memberKey{"default", "/g", string(rune('a' + i))}]
		if i%2 == 1 {
			require.ErrorIs(t, err, errNoSuchLease)
			require.False(t, stored, "write %d failed: nothing of it is stored", i)
		} else {
			require.NoError(t, err)
			require.True(t, stored, "write %d is stored", i)
		}
	}
}

func TestStoreRefusesWritesOnceClosed(t *testing.T) {
	s, err := openStore(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, s.close())
	require.ErrorIs(t, s.update(func(*storeTx) error { return nil }), errStoreClosed)
}

func FuzzDecodeMemberKey(f *testing.F) {
	f.Add(memberKey{"default", "/svc/db", "db-1"}.encode())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{3, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := decodeMemberKey(b)
		if err != nil {
			return
		}
		again, err := decodeMemberKey(k.encode())
		require.NoError(t, err)
		require.Equal(t, k, again)
	})
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add(memberRecord{Meta: map[string]string{"zone": "eu", "a": ""}, Joins: map[string]uint32{"": 2, "0123456789abcdef": 1}}.appendEncoded(nil))
	f.Add(memberRecord{Joins: map[string]uint32{"": 1}}.appendEncoded(nil))
	f.Add([]byte(`{"ttl":10000000000,"expires":1}`))
	f.Add([]byte{0, 1, 1, 'x', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeRecord(b); err == nil {
			require.NotEmpty(t, r.Joins)
			for l, c := range r.Joins {
				require.NotZero(t, c)
				require.LessOrEqual(t, c, uint32(maxJoins))
				require.True(t, l == "" || validLeaseID(l), "lease %q", l)
			}
			again, err := decodeRecord(r.appendEncoded(nil))
			require.NoError(t, err)
			require.Equal(t, r, again)
		}
		if l, err := decodeLeaseRecord(b); err == nil {
			require.GreaterOrEqual(t, l.TTL, minLeaseTTL)
			require.LessOrEqual(t, l.TTL, maxLeaseTTL)
		}
	})
}

// An agent whose data file it cannot use says why and exits with status 1.
func TestAgentExitsOneOnADataFileItCannotUse(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, storeFile), []byte("not a database, but long enough to look like one at first glance"), 0o600))
	var out, errOut bytes.Buffer
	code := cli(context.Background(), []string{"agent", "--http", "127.0.0.1:0", "--name", "t1", "--data-dir", dir}, &out, &errOut)
	require.Equal(t, 1, code)
	require.Contains(t, errOut.String(), "damaged or not a cpgd data file")
}

// logOnDisk reads every member's record from the file itself, without the
// index.
func logOnDisk(t *testing.T, s *store) map[memberKey]memberRecord {
	t.Helper()
	members := make(map[memberKey]memberRecord)
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).ForEach(func(_, v []byte) error {
			k, r, err := decodeLogEntry(v)
			if err != nil {
				return err
			}
			_, dup := members[k]
			require.False(t, dup, "one record per member: %v", k)
			members[k] = r
			return nil
		})
	}))
	return members
}

// A commit of many joins to members spread over many groups writes a few
// pages, not one per join: new records are appended to the log's last page
// whatever their names, so the disk writes and syncs little and the commit
// spills few pages.
func TestGroupCommitOfScatteredJoinsWritesFewPages(t *testing.T) {
	a := startDurable(t, t.TempDir(), time.Now())
	const groups = 64
	// Enough members first that a layout by name would spread the groups
	// over many leaf pages.
	var wg sync.WaitGroup
	for w := range groups {
		wg.Go(func() {
			for i := range 40 {
				_, err := a.apply(changeJoin, fmt.Sprintf("/g/%d", w), fmt.Sprintf("before-%d", i), "", nil)
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	commits, writes, pages := a.store.commits.Load(), a.store.writes.Load(), pagesWritten(a.store.db)
	for w := range groups {
		wg.Go(func() {
			for i := range 20 {
				_, err := a.apply(changeJoin, fmt.Sprintf("/g/%d", w), fmt.Sprintf("m-%d", i), "", nil)
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	commits = a.store.commits.Load() - commits
	writes = a.store.writes.Load() - writes
	pages = pagesWritten(a.store.db) - pages
	perCommit := float64(pages) / float64(commits)
	t.Logf("%d joins in %d commits (%.1f a commit) wrote %d pages, %.1f a commit", writes, commits, float64(writes)/float64(commits), pages, perCommit)
	require.LessOrEqual(t, commits*4, writes, "joins share commits")
	// The log's last leaf or two, its branch, the root bucket's page, the
	// free list and the meta page.
	require.LessOrEqual(t, perCommit, 8.0, "pages written per commit")
}

// pagesWritten is the number of pages db's commits wrote so far.
func pagesWritten(db *bolt.DB) int64 {
	st := db.Stats()
	return st.TxStats.GetWrite()
}

// A data file of the first layout (records under their names) is converted
// at open: every registration and lease comes back, the lease's joins
// still bound to it.
func TestDataFileOfTheFirstLayoutIsConverted(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	const lease = "0123456789abcdef"
	db, err := bolt.Open(filepath.Join(dir, storeFile), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		buckets := map[string]map[string]string{
			"cpgd": {"format": "cpgd data v1", "incarnation": string(binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano())))},
			"members": {
				string(memberKey{"default", "/svc/db", "db-1"}.encode()):   `{"meta":{"zone":"eu"},"joins":{"":2,"` + lease + `":1}}`,
				string(memberKey{"default", "/svc/web", "web-1"}.encode()): `{"joins":{"` + lease + `":1}}`,
				string(memberKey{"default", "/svc/api", "api-1"}.encode()): `{"joins":{"":1}}`,
			},
			"leases": {lease: `{"ttl":60000000000,"expires":` + fmt.Sprint(now.Add(time.Minute).UnixNano()) + `}`},
			"lease-members": {
				lease + string(memberKey{"default", "/svc/db", "db-1"}.encode()):   "",
				lease + string(memberKey{"default", "/svc/web", "web-1"}.encode()): "",
			},
		}
		for name, kv := range buckets {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for k, v := range kv {
				if err := b.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())

	a := startDurable(t, dir, now.Add(time.Second))
	require.Equal(t, 3, a.count("/svc/db", "db-1"))
	require.Equal(t, 1, a.count("/svc/web", "web-1"))
	require.Equal(t, 1, a.count("/svc/api", "api-1"))
	g, err := a.scope().Members("/svc/db")
	require.NoError(t, err)
	require.Equal(t, registry.Meta{"zone": "eu"}, g.Members[0].Meta)
	require.Len(t, a.stored().members, 3)
	require.NoError(t, a.store.db.View(func(tx *bolt.Tx) error {
		require.Equal(t, storeFormat, string(tx.Bucket(bucketMeta).Get(keyFormat)))
		require.Nil(t, tx.Bucket([]byte("members")), "the first layout's buckets are gone")
		require.Nil(t, tx.Bucket([]byte("lease-members")))
		return nil
	}))
	left, err := a.d.revoke(lease)
	require.NoError(t, err)
	require.Equal(t, 2, left, "the lease still holds its two joins")
	require.Equal(t, 2, a.count("/svc/db", "db-1"))
	require.Equal(t, 0, a.count("/svc/web", "web-1"))
	a.stop()

	b := startDurable(t, dir, now.Add(2*time.Second))
	require.Equal(t, 2, b.count("/svc/db", "db-1"))
	require.Equal(t, 1, b.count("/svc/api", "api-1"))
	require.Equal(t, 0, b.count("/svc/web", "web-1"))
}

// joinOnce is a store write that records one join of k, for the tests
// that drive the store directly.
func joinOnce(k memberKey) func(*storeTx) error {
	return func(tx *storeTx) error {
		return putMember(tx, k, memberRecord{Joins: map[string]uint32{"": 1}})
	}
}

// After a commit that failed, the index is read again from the file: it
// then says what bbolt holds, whether or not the failed commit's pages
// reached the disk.
func TestStoreIndexFollowsTheFileAfterAFailedCommit(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	a, b := memberKey{"default", "/g", "a"}, memberKey{"default", "/g", "b"}
	require.NoError(t, s.update(joinOnce(a)))

	// A commit whose pages landed though it was reported failed: the file
	// holds b and no longer a, behind the index's back.
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		stx := storeTx{tx: tx, index: &s.index}
		if err := putMember(&stx, a, memberRecord{}); err != nil {
			return err
		}
		return putMember(&stx, b, memberRecord{Joins: map[string]uint32{"": 1}})
	}))
	s.resync()
	st, err := s.load()
	require.NoError(t, err)
	require.Equal(t, logOnDisk(t, s), st.members)
	require.Equal(t, map[memberKey]memberRecord{b: {Joins: map[string]uint32{"": 1}}}, st.members)
}

// A log entry that does not decode, or a second record of one member, is
// an error at open naming the member, never a registration silently lost.
func TestStoreRefusesALogItCannotRead(t *testing.T) {
	entry := func(k memberKey, record []byte) []byte { return append(k.encode(), record...) }
	db1 := memberKey{"default", "/svc/db", "db-1"}
	for name, c := range map[string]struct {
		entries [][]byte
		want    string
	}{
		"bad record":  {[][]byte{entry(db1, []byte{0, 1, 0, 0})}, `member "db-1" of "/svc/db" in scope "default": bad member record`},
		"bad key":     {[][]byte{{9, 'x'}}, "bad member key"},
		"two records": {[][]byte{entry(db1, joinedOnce), entry(db1, joinedOnce)}, `member "db-1" of "/svc/db" in scope "default": two records`},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := openStore(dir)
			require.NoError(t, err)
			require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
				for i, e := range c.entries {
					if err := tx.Bucket(bucketRecords).Put(seqKey(uint64(i+1)), e); err != nil {
						return err
					}
				}
				return nil
			}))
			require.NoError(t, s.close())
			_, err = openStore(dir)
			require.ErrorContains(t, err, c.want)
		})
	}
}

// A change worked out before its write is worked out again when the
// member's record moved in between (the index's rebuild after a failed
// commit can do that while the member's lock is held): the write never
// stores a record made from a stale one.
func TestChangeWriteWorksOutAgainWhenTheRecordMoved(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	k := memberKey{"default", "/g", "m"}
	require.NoError(t, s.update(joinOnce(k)))
	w := &changeWrite{c: change{kind: changeJoin, group: k.group, member: k.member}, k: k, now: time.Now()}
	require.NoError(t, w.prepare(&s.index))
	require.Equal(t, 1, w.before.count())
	// The record moves after prepare read it: two joins now.
	require.NoError(t, s.update(func(tx *storeTx) error {
		return putMember(tx, k, memberRecord{Joins: map[string]uint32{"": 2}})
	}))
	require.NoError(t, s.updateWith(w))
	require.NoError(t, w.refused)
	require.Equal(t, 2, w.before.count(), "the write saw the record as it was when it ran")
	got, err := s.member(k)
	require.NoError(t, err)
	require.Equal(t, 3, got.count())
	st, err := s.load()
	require.NoError(t, err)
	require.Len(t, st.members, 1, "one record of the member, the old ones deleted")
}
