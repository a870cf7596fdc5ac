// Command cpgd runs a cpg registry node with an HTTP API, so that services
// in any language can join groups and look them up, and is a command-line
// client of such a node.
//
//	cpgd [agent] [flags]      run a node (see cpgd agent --help)
//	cpgd VERB [--addr URL]    talk to a running node (see cpgd help)
//	cpgd version              print the version
//
// With no arguments it runs an agent on its own with the defaults: the
// host's name as the node name and the API on 127.0.0.1:7400. With any of
// --bind, --gossip, --join or --cluster-key it is a cluster node: it runs
// the failure detector on --gossip, the overlay on --bind, joins the nodes
// listed in --join (none: it starts a cluster of its own) and replicates
// every scope with them. Every flag also reads an environment variable
// (CPGD_NAME, CPGD_HTTP, ...). SIGINT or SIGTERM leaves the cluster
// gracefully: the other nodes drop this node's members at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
)

func main() {
	applyGCDefault(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// cli runs one command line and returns the process's exit code: 0 on
// success and for help, 2 for a command line it cannot parse, 1 otherwise.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	verb := "agent"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		verb, args = args[0], args[1:]
	}
	var err error
	switch verb {
	case "agent":
		err = runAgent(ctx, args, stdout, stderr, nil)
	case "local-cluster":
		err = runLocalCluster(ctx, args, stdout, stderr)
	case "help":
		usage(stdout)
		return 0
	case "version":
		fmt.Fprintln(stdout, "cpgd", version())
		return 0
	default:
		run, ok := clientVerbs[verb]
		if !ok {
			fmt.Fprintf(stderr, "cpgd: unknown verb %q\n", verb)
			usage(stderr)
			return 2
		}
		err = run(ctx, args, stdout)
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "cpgd:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "cpgd:", err)
		return 1
	}
}

// errUsage marks an error in the command line itself.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  cpgd [agent] [flags]       run a registry node (cpgd agent --help lists the flags)
  cpgd local-cluster [flags] three nodes on this host until Ctrl-C, to try cpgd
  cpgd VERB [flags]          talk to a running node; VERB --help lists its flags
  cpgd version               print the version
verbs:`)
	verbs := make([]string, 0, len(clientVerbs))
	for v := range clientVerbs {
		verbs = append(verbs, v)
	}
	slices.Sort(verbs)
	fmt.Fprintln(w, "  "+strings.Join(verbs, " "))
}

// version is the module's version as the build recorded it, with the
// source revision when built from a checkout.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
		if s.Key == "vcs.modified" && s.Value == "true" {
			v += "+dirty"
		}
	}
	return v
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}
