package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A commit that fails (the disk is full) is answered with its error, the
// index still says what the file holds, and the store goes on once the
// disk takes writes again.
func TestStoreCommitThatFailsLeavesTheIndexTrue(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	a, b := memberKey{"default", "/g", "a"}, memberKey{"default", "/g", "b"}
	require.NoError(t, s.update(joinOnce(a)))

	// The data file's descriptor is made to write into /dev/full for a
	// while: every write then fails with ENOSPC.
	fd := openFileDescriptor(t, s.path)
	saved, err := syscall.Dup(fd)
	require.NoError(t, err)
	defer syscall.Close(saved)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	require.NoError(t, err)
	defer full.Close()
	require.NoError(t, syscall.Dup3(int(full.Fd()), fd, syscall.O_CLOEXEC))
	err = s.update(joinOnce(b))
	require.NoError(t, syscall.Dup3(saved, fd, syscall.O_CLOEXEC))
	require.ErrorIs(t, err, syscall.ENOSPC)

	st, err := s.load()
	require.NoError(t, err)
	require.Equal(t, logOnDisk(t, s), st.members)
	require.Equal(t, map[memberKey]memberRecord{a: {Joins: map[string]uint32{"": 1}}}, st.members)
	require.NoError(t, s.update(joinOnce(b)))
	st, err = s.load()
	require.NoError(t, err)
	require.Len(t, st.members, 2)
}

// openFileDescriptor is this process's descriptor of the file at path.
func openFileDescriptor(t *testing.T, path string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || target != path {
			continue
		}
		var fd int
		for _, c := range e.Name() {
			fd = fd*10 + int(c-'0')
		}
		return fd
	}
	t.Fatalf("no descriptor of %s", path)
	return -1
}
