// Watch: prints the joins, leaves and metadata changes of a cpgd agent's
// groups as they happen, through the Go client's Watch, which reconnects
// by itself and resumes where it was. Run an agent (go run ./cmd/cpgd, or
// a cluster: go run ./cmd/cpgd local-cluster), then
//
//	go run ./examples/watch --addr http://127.0.0.1:7400
//	go run ./examples/watch --addr http://127.0.0.1:7401 --pattern '/svc/*' --snapshot
//
// and join and leave from another terminal:
//
//	curl -s -XPOST -H 'Content-Type: application/json' 127.0.0.1:7400/v1/scopes/default/join -d '{"group":"/svc/db","member":"db-1"}'
//	curl -s -XPOST -H 'Content-Type: application/json' 127.0.0.1:7400/v1/scopes/default/leave -d '{"group":"/svc/db","member":"db-1"}'
//
// Ctrl-C stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cpggo/cpg/client"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", client.DefaultAddr, "the agent's API")
	flag.StringVar(&cfg.token, "token", os.Getenv("CPGD_TOKEN"), "the agent's bearer token, if it wants one [CPGD_TOKEN]")
	flag.StringVar(&cfg.scope, "scope", "default", "the scope to watch")
	flag.StringVar(&cfg.pattern, "pattern", "*", "the groups to watch: a name or a pattern (* matches every group)")
	flag.BoolVar(&cfg.snapshot, "snapshot", false, "print the current members first, then the changes")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// config is what to watch, and where.
type config struct {
	addr, token, scope, pattern string
	snapshot                    bool
}

// run prints the watch's events until ctx ends.
func run(ctx context.Context, cfg config, out io.Writer) error {
	var opts []client.Option
	if cfg.token != "" {
		opts = append(opts, client.WithToken(cfg.token))
	}
	c, err := client.New(cfg.addr, opts...)
	if err != nil {
		return err
	}
	events, err := c.Watch(ctx, cfg.scope, cfg.pattern, client.WatchOptions{
		Snapshot: cfg.snapshot,
		// A lost connection is retried; say so rather than go quiet.
		OnError: func(err error) { fmt.Fprintf(out, "%s (reconnecting) %v\n", now(), err) },
	})
	if err != nil {
		return fmt.Errorf("watch %s in scope %s at %s: %w", cfg.pattern, cfg.scope, c.Addr(), err)
	}
	fmt.Fprintf(out, "watching %s in scope %s at %s\n", cfg.pattern, cfg.scope, c.Addr())
	for ev := range events {
		switch ev.Kind {
		case client.EventReset:
			// The watch could not resume after the last event it saw:
			// the current members follow, then "synced".
			fmt.Fprintf(out, "%s reset: %s\n", now(), ev.Reason)
		case client.EventSynced:
			fmt.Fprintf(out, "%s synced: changes follow\n", now())
		default:
			m := ev.Member
			fmt.Fprintf(out, "%s %-6s %s %s on %s, count %d%s\n", now(), ev.Kind, ev.Group, m.ID, m.Node, m.Count, meta(m.Meta))
		}
	}
	return nil
}

func now() string { return time.Now().Format("15:04:05.000") }

// meta formats a member's metadata, sorted by key.
func meta(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(",")
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %s=%s", k, m[k])
	}
	return b.String()
}
