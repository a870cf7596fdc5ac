package main

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The quickstart runs as a user runs it and prints what its comments
// promise: the members with their addresses, the pattern group that
// serves an unjoined name, the picks and the context-bound worker's leave.
func TestQuickstartRuns(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "quickstart")
	build, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", build)
	out, err := exec.Command(bin).CombinedOutput()
	require.NoError(t, err, "%s", out)
	text := string(out)
	require.Contains(t, text, "members of /svc/db/eu:\n  db-1 on ")
	require.Contains(t, text, " at 10.0.0.8:5432\n")
	require.Contains(t, text, "/svc/cache/us is served by group /svc/*: gateway\n")
	require.Regexp(t, `random pick: db-[12]\n`, text)
	require.Contains(t, text, "oldest pick except db-1: db-2\n")
	require.Contains(t, text, "watch: leave /svc/jobs worker-1 (count 0)\n")
}
