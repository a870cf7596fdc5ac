// Command cpgd runs a cpg registry node with an HTTP API, so that services
// in any language can join groups and look them up.
//
//	cpgd [agent] [--name NAME] [--http ADDR]
//
// With no arguments it runs an agent with the defaults: the host's name as
// the node name and the API on 127.0.0.1:7400. Every flag also reads an
// environment variable (CPGD_NAME, CPGD_HTTP). This version runs one node;
// replication between nodes is wired in by a later release.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cpggo/cpg/registry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], nil); err != nil {
		fmt.Fprintln(os.Stderr, "cpgd:", err)
		os.Exit(1)
	}
}

// run parses the command line and runs the agent until ctx ends. ready, if
// not nil, receives the API's address once it listens.
func run(ctx context.Context, args []string, ready chan<- string) error {
	if len(args) > 0 && args[0] == "agent" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("cpgd agent", flag.ContinueOnError)
	name := fs.String("name", envOr("CPGD_NAME", ""), "node name, unique in the cluster (default: the host name) [CPGD_NAME]")
	httpAddr := fs.String("http", envOr("CPGD_HTTP", "127.0.0.1:7400"), "address of the HTTP API [CPGD_HTTP]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (usage: cpgd [agent] [--name NAME] [--http ADDR])", fs.Args())
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	node, err := registry.New(registry.Config{Name: *name})
	if err != nil {
		return err
	}
	defer node.Close()

	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("listen for the HTTP API: %w", err)
	}
	srv := &http.Server{Handler: (&api{node: node, log: log}).routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("cpgd agent started", "node", node.Name(), "http", "http://"+ln.Addr().String(), "mode", "single node")
	if ready != nil {
		ready <- ln.Addr().String()
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("cpgd agent stopping", "node", node.Name())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Watch streams only end when their clients go; close the node first
	// so they end now, then let the server drain.
	node.Close()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}
