package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The example's story holds: node-a sees both members, picks its own, and
// the other node's once its own left.
func TestEmbeddedExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out), out.String())
	text := out.String()
	require.Contains(t, text, "node-a sees 2 members of /svc/api:\n")
	require.Contains(t, text, "  api-b on node-b at 10.0.0.2:8080\n")
	require.Contains(t, text, "closest pick on node-a: api-a (on node-a)\napi-a leaves /svc/api\nclosest pick on node-a: api-b (on node-b)\n")
}
