package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A flood paced well within the links' queues, over a formed tree,
// reaches every node once: every message delivered everywhere, none twice,
// and close to one payload copy per delivery (flooding every link, as a
// tree that never formed would, costs about the nodes' degree in copies).
func TestFlooderDeliversEverywhereOverATree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out bytes.Buffer
	cfg := config{nodes: 5, warmup: 5, messages: 300, size: 64, interval: time.Millisecond, settle: 3 * time.Second}
	warmup, flood, err := run(ctx, cfg, &out)
	require.NoError(t, err, out.String())
	t.Log("\n" + out.String())

	require.Equal(t, 4*5, warmup.delivered, "warm-up reliability")
	require.Equal(t, 4*300, flood.delivered, "flood reliability")
	require.Equal(t, 300, flood.lowest)
	require.Zero(t, flood.appDuplicates)
	require.Less(t, flood.rmr(), 0.5, "payload copies per delivery once the tree formed")
	require.Len(t, flood.latencies, 4*300)

	text := out.String()
	require.Contains(t, text, "flood: node-0 broadcasts 300 messages of 64 bytes, one every 1ms\n")
	require.Contains(t, text, "  reliability 100.00%: 1200 of 1200 deliveries, the fewest on one node 300 of 300\n")
	require.Contains(t, text, "  node-4   delivered 305 of 305\n")
	require.Regexp(t, `RMR \d+\.\d{4}: \d+ payload messages received for 1200 deliveries; 0 delivered twice`, text)
	require.Regexp(t, `latency from broadcast to delivery: p50 \S+, p99 \S+, max \S+`, text)
}
