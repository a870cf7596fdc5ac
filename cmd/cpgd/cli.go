package main

import (
	"context"
	"io"
)

// clientVerbs are the verbs that talk to a running agent.
var clientVerbs = map[string]func(ctx context.Context, args []string, stdout io.Writer) error{}
