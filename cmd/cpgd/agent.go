package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/cpggo/cpg/registry"
)

// agentConfig is an agent's command line, as given.
type agentConfig struct {
	name, http, dataDir, token, logLevel string
	cluster                              clusterFlags
	showVersion                          bool
	apiLimits
	watch watchConfig
}

func (c *agentConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.name, "name", envOr("CPGD_NAME", ""), "node name, unique in the cluster (default: the host name) [CPGD_NAME]")
	fs.StringVar(&c.http, "http", envOr("CPGD_HTTP", "127.0.0.1:7400"), "address of the HTTP API [CPGD_HTTP]")
	fs.StringVar(&c.dataDir, "data-dir", envOr("CPGD_DATA_DIR", ""), "directory of the node's durable state: registrations, leases, incarnation (default: $XDG_STATE_HOME/cpgd/<name>, else ~/.local/state/cpgd/<name>) [CPGD_DATA_DIR]")
	fs.StringVar(&c.token, "token", envOr("CPGD_TOKEN", ""), "bearer token every /v1 call must present (default: none) [CPGD_TOKEN]")
	fs.StringVar(&c.logLevel, "log-level", envOr("CPGD_LOG_LEVEL", "info"), "debug, info, warn or error [CPGD_LOG_LEVEL]")
	fs.StringVar(&c.cluster.bind, "bind", envOr("CPGD_BIND", ""), "overlay TCP listen address of a cluster node (default 127.0.0.1:0 in a cluster) [CPGD_BIND]")
	fs.StringVar(&c.cluster.gossip, "gossip", envOr("CPGD_GOSSIP", ""), "failure detector (memberlist) address of a cluster node (default 127.0.0.1:0 in a cluster) [CPGD_GOSSIP]")
	fs.StringVar(&c.cluster.join, "join", envOr("CPGD_JOIN", ""), "comma-separated --gossip addresses of running nodes to join [CPGD_JOIN]")
	fs.StringVar(&c.cluster.key, "cluster-key", envOr("CPGD_CLUSTER_KEY", ""), "base64 of a 16, 24 or 32-byte key shared by the cluster's nodes [CPGD_CLUSTER_KEY]")
	fs.StringVar(&c.cluster.profile, "gossip-profile", envOr("CPGD_GOSSIP_PROFILE", "lan"), "failure detector timings: lan or loopback (one host) [CPGD_GOSSIP_PROFILE]")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	c.apiLimits.flags(fs)
	c.watch.flags(fs, &c.apiLimits)
}

// run runs the agent until ctx ends; tests call it. ready, if not nil,
// receives the API's address once it listens.
func run(ctx context.Context, args []string, ready chan<- string) error {
	if len(args) > 0 && args[0] == "agent" {
		args = args[1:]
	}
	return runAgent(ctx, args, io.Discard, os.Stderr, ready)
}

// runAgent parses the agent's command line and runs it until ctx ends.
func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("cpgd agent", flag.ContinueOnError)
	// Help goes to stdout once, below; a bad flag gets its one-line error
	// on stderr (from cli), not the whole list.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var cfg agentConfig
	cfg.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: cpgd [agent] [flags]   (each flag also reads the environment variable in brackets)")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (cpgd agent --help lists the flags)", errUsage, fs.Args())
	}
	if cfg.showVersion {
		fmt.Fprintln(stdout, "cpgd", version())
		return nil
	}
	if err := cfg.apiLimits.check(); err != nil {
		return err
	}
	if err := cfg.watch.check(); err != nil {
		return err
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// The API listens before the node starts so that a cluster node
	// advertises the address it really serves (a port of 0 is resolved).
	ln, err := net.Listen("tcp", cfg.http)
	if err != nil {
		return fmt.Errorf("listen for the HTTP API: %w", err)
	}
	defer ln.Close()
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() && cfg.token == "" {
		log.Warn("the HTTP API listens on a non-loopback address without a token: anyone who reaches it can change the registry (set --token)", "http", ln.Addr().String())
	}
	// Served at once: /readyz says "starting" while the data loads and the
	// node joins; the whole API replaces the front's handler once ready.
	front := newFrontHandler()
	srv := &http.Server{
		Handler:           front,
		ReadHeaderTimeout: cfg.timeouts.readHeader,
		ReadTimeout:       cfg.timeouts.read,
		WriteTimeout:      cfg.timeouts.write,
		IdleTimeout:       cfg.timeouts.idle,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// A start that fails stops serving; after a clean run this is a no-op.
	defer srv.Close()
	cc, err := cfg.cluster.clusterConfig(ln.Addr().String())
	if err != nil {
		return err
	}
	if cc != nil {
		// The overlay's and failure detector's notable events (a peer
		// certainly gone, links lost, refutes) belong in cpgd's log.
		cc.Membership.Logger = log
	}
	name, err := nodeName(cfg.name)
	if err != nil {
		return err
	}
	dataDir, err := dataDirOf(cfg.dataDir, name)
	if err != nil {
		return err
	}
	st, err := openStore(dataDir)
	if err != nil {
		return err
	}
	defer st.close()
	// Stored before the node starts, so the next start, even after a crash,
	// outranks this one on every other node.
	incarnation, err := st.nextIncarnation(time.Now())
	if err != nil {
		return err
	}
	node, err := registry.New(registry.Config{Name: name, Incarnation: incarnation, Cluster: cc, Logger: log, MaxScopes: cfg.maxScopes, WatchBuffer: cfg.watch.journal})
	if err != nil {
		return err
	}
	defer node.Close()
	durable := newDurable(st, node, log)
	if err := durable.restore(); err != nil {
		return err
	}
	leasesCtx, stopLeases := context.WithCancel(ctx)
	leasesDone := make(chan struct{})
	go func() { durable.expireLeases(leasesCtx); close(leasesDone) }()
	// Leases stop lapsing before the node and the store close.
	defer func() { stopLeases(); <-leasesDone }()

	_, port, _ := net.SplitHostPort(ln.Addr().String())
	a := &api{node: node, log: log, cfg: &cfg, metrics: newMetrics(node), listenPort: port}
	a.durable = durable
	durable.leases.observe(func(n int) { a.metrics.leases.Set(float64(n)) })
	front.set(a.handler())
	a.setReady()
	mode := []any{"mode", "single node"}
	if cc != nil {
		mode = []any{"mode", "cluster", "gossip", node.GossipAddr(), "join", cc.Join}
	}
	log.Info("cpgd agent started", append([]any{"node", node.Name(), "http", "http://" + ln.Addr().String()}, mode...)...)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	a.stopping.Store(true)
	log.Info("cpgd agent stopping: leaving the cluster", "node", node.Name())
	// Watch streams only end when their clients go; close the node first
	// so they end now, then let the server drain.
	node.Close()
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.drain)
	defer cancel()
	a.watches.drain(drainCtx) // streams own their connections: the server does not wait for them
	if err := srv.Shutdown(drainCtx); err != nil {
		// A client that sent half a request, or never reads, must not
		// hold the process: what is still open is cut off. Every change
		// that was answered is already made, so stopping is still clean.
		log.Info("cpgd agent stopping: closed the connections still open after the drain", "drain", cfg.drain, "reason", err)
		srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
