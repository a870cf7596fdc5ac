// Command cpgd runs a cpg registry node with an HTTP API, so that services
// in any language can join groups and look them up.
//
//	cpgd [agent] [--name NAME] [--http ADDR]
//	     [--bind ADDR] [--gossip ADDR] [--join ADDR,...] [--cluster-key KEY]
//	     [--gossip-profile lan|loopback] [--log-level LEVEL]
//
// With no arguments it runs an agent on its own with the defaults: the
// host's name as the node name and the API on 127.0.0.1:7400. With any of
// --bind, --gossip, --join or --cluster-key it is a cluster node: it runs
// the failure detector on --gossip, the overlay on --bind, joins the nodes
// listed in --join (none: it starts a cluster of its own) and replicates
// every scope with them. Every flag also reads an environment variable
// (CPGD_NAME, CPGD_HTTP, CPGD_BIND, CPGD_GOSSIP, CPGD_JOIN, CPGD_CLUSTER_KEY,
// CPGD_GOSSIP_PROFILE, CPGD_LOG_LEVEL). SIGINT or SIGTERM leaves the cluster gracefully: the
// other nodes drop this node's members at once.
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
	var cf clusterFlags
	fs.StringVar(&cf.bind, "bind", envOr("CPGD_BIND", ""), "overlay TCP listen address of a cluster node (default 127.0.0.1:0 in a cluster) [CPGD_BIND]")
	fs.StringVar(&cf.gossip, "gossip", envOr("CPGD_GOSSIP", ""), "failure detector (memberlist) address of a cluster node (default 127.0.0.1:0 in a cluster) [CPGD_GOSSIP]")
	fs.StringVar(&cf.join, "join", envOr("CPGD_JOIN", ""), "comma-separated --gossip addresses of running nodes to join [CPGD_JOIN]")
	fs.StringVar(&cf.key, "cluster-key", envOr("CPGD_CLUSTER_KEY", ""), "base64 of a 16, 24 or 32-byte key shared by the cluster's nodes [CPGD_CLUSTER_KEY]")
	fs.StringVar(&cf.profile, "gossip-profile", envOr("CPGD_GOSSIP_PROFILE", "lan"), "failure detector timings: lan or loopback (one host) [CPGD_GOSSIP_PROFILE]")
	logLevel := fs.String("log-level", envOr("CPGD_LOG_LEVEL", "info"), "debug, info, warn or error [CPGD_LOG_LEVEL]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (usage: cpgd [agent] [--name NAME] [--http ADDR] [--bind ADDR] [--gossip ADDR] [--join ADDRS] [--cluster-key KEY])", fs.Args())
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// The API listens before the node starts so that a cluster node
	// advertises the address it really serves (a port of 0 is resolved).
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("listen for the HTTP API: %w", err)
	}
	defer ln.Close()
	cc, err := cf.clusterConfig(ln.Addr().String())
	if err != nil {
		return err
	}
	if cc != nil {
		// The overlay's and failure detector's notable events (a peer
		// certainly gone, links lost, refutes) belong in cpgd's log.
		cc.Membership.Logger = log
	}
	node, err := registry.New(registry.Config{Name: *name, Cluster: cc, Logger: log})
	if err != nil {
		return err
	}
	defer node.Close()

	srv := &http.Server{Handler: (&api{node: node, log: log}).routes(), ReadHeaderTimeout: 10 * time.Second}
	mode := []any{"mode", "single node"}
	if cc != nil {
		mode = []any{"mode", "cluster", "gossip", node.GossipAddr(), "join", cc.Join}
	}
	log.Info("cpgd agent started", append([]any{"node", node.Name(), "http", "http://" + ln.Addr().String()}, mode...)...)
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
	log.Info("cpgd agent stopping: leaving the cluster", "node", node.Name())
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
