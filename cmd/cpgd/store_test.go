package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
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
		require.NoError(t, s.update(func(tx *bolt.Tx) error {
			for i := range 2000 {
				k := memberKey{"default", "/g", string(rune('a'+i%26)) + string(rune(i))}
				if err := putMember(tx, k, memberRecord{}, memberRecord{Joins: map[string]uint32{"": 1}}); err != nil {
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
		require.NoError(t, s.update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyFormat, []byte("cpgd data v99"))
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
			errs[i] = s.update(func(tx *bolt.Tx) error {
				if err := putMember(tx, k, memberRecord{}, memberRecord{Joins: map[string]uint32{"": 1}}); err != nil {
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
	require.ErrorIs(t, s.update(func(*bolt.Tx) error { return nil }), errStoreClosed)
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
	rec, _ := json.Marshal(memberRecord{Meta: map[string]string{"zone": "eu"}, Joins: map[string]uint32{"": 2, "0123456789abcdef": 1}})
	f.Add(rec)
	f.Add([]byte(`{"ttl":10000000000,"expires":1}`))
	f.Add([]byte(`{"joins":{"x":0}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeMemberRecord(b); err == nil {
			for l, c := range r.Joins {
				require.NotZero(t, c)
				require.True(t, l == "" || validLeaseID(l), "lease %q", l)
			}
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
