package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cpggo/cpg/internal/proctest"
	"github.com/stretchr/testify/require"
)

// The example starts its own agent, registers three workers, and once one
// crashes the caller keeps being answered: by the others while the crashed
// worker's lease runs out, and never by the crashed one after the
// registry dropped it.
func TestDiscoveryMovesOnFromACrashedWorker(t *testing.T) {
	bin, err := proctest.Binary()
	require.NoError(t, err)
	// Where an agent keeps its state unless told otherwise: the example's
	// agent must leave it alone (two runs at once would share it).
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	err = run(ctx, config{cpgd: bin, workers: 3, calls: 4, ttl: time.Second}, &out)
	text := out.String()
	require.NoError(t, err, text)
	t.Log("\n" + text)
	left, err := os.ReadDir(state)
	require.NoError(t, err)
	require.Empty(t, left, "the agent's state stays in the example's temporary directory")

	require.Regexp(t, `(?m)^cpgd agent-1 listens on http://127\.0\.0\.1:\d+$`, text)
	for _, w := range []string{"worker-1", "worker-2", "worker-3"} {
		require.Regexp(t, `(?m)^`+w+` serves http://127\.0\.0\.1:\d+, registered in /svc/greeter with lease \S+ \(ttl 1s\)$`, text)
	}
	crash := strings.Index(text, "worker-2 crashed")
	dropped := strings.Index(text, "the registry dropped worker-2 ")
	require.Positive(t, crash)
	require.Greater(t, dropped, crash)
	require.NotContains(t, text[dropped:], "worker-2 did not answer", "no caller picks it once it is dropped")
	require.NotContains(t, text[dropped:], "hello from worker-2")
	require.NotContains(t, text[crash:], "hello from worker-2", "it is gone from the crash on")

	calls := regexp.MustCompile(`(?m)^call \d+: hello from worker-\d$`).FindAllString(text, -1)
	require.GreaterOrEqual(t, len(calls), 8, "four calls before the crash and four after the drop")
	require.Regexp(t, `(?m)^\d+ calls answered, \d+ attempts failed on worker-2 before the registry dropped it$`, text)
	require.Contains(t, text, "worker-1 stopped: lease revoked, gone from the registry at once\n")
	require.True(t, strings.HasSuffix(text, "cpgd agent-1 stopped\n"), "the agent is stopped last")
}
