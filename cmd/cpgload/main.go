// Command cpgload measures one cpgd agent under concurrent HTTP clients on
// loopback, with keep-alive connections, and the same lookups made in
// process through registry.Scope, so the API's cost over the embedded Go
// call can be given as a ratio:
//
//	go run ./cmd/cpgload [-runs 3] [-duration 5s] [-workloads lookup,pick,join,...]
//
// Workloads: lookup (members of one of 1,000 groups of 10, 16 clients),
// pick (a random member of one of them, 16 clients), join (64 clients,
// each join a new member), join-idle-watchers (the same joins with 1,000
// open watches of groups nobody joins), busy-join and busy-join-watchers
// (64 clients joining one group, without and with 1,000 watches of that
// group, read as fast as the machine allows), embedded (the lookups of
// "lookup" through registry.Scope in this process). Every run starts a
// fresh agent (its own data dir in a temporary directory) built once from
// this module (run it from the module's root), or the binary -cpgd names;
// the table gives, per workload, the median of the runs' requests/s, p50,
// p99 and the agent's CPU time per request, and every run's requests/s.
// The agent's watch limit per client must let 1,000 watches through:
// -agent-args "--max-watches-per-client 2000". BENCHMARKS.md has the
// figures.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cpggo/cpg/internal/proctest"
)

type options struct {
	binary    string
	agentArgs []string
	duration  time.Duration
	warmup    time.Duration
	groups    int
	perGroup  int
	watchers  int
	readers   int
	writers   int
	token     string
}

func main() {
	var o options
	runs := flag.Int("runs", 3, "runs of every workload, each on a fresh agent")
	workloads := flag.String("workloads", "lookup,pick,embedded,join,join-idle-watchers,busy-join,busy-join-watchers", "comma-separated workloads")
	agentArgs := flag.String("agent-args", "", "extra flags for every agent, space-separated")
	flag.StringVar(&o.binary, "cpgd", "", "cpgd binary to run (default: build this module's)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per workload and run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time before it")
	flag.IntVar(&o.groups, "groups", 1000, "groups the lookups choose from")
	flag.IntVar(&o.perGroup, "members", 10, "members per group")
	flag.IntVar(&o.watchers, "watchers", 1000, "watches open in the *-watchers workloads")
	flag.IntVar(&o.readers, "readers", 16, "concurrent clients of lookup, pick and embedded")
	flag.IntVar(&o.writers, "writers", 64, "concurrent clients of the join workloads")
	flag.StringVar(&o.token, "token", "", "bearer token, if the agent requires one (give --token in -agent-args too)")
	flag.Parse()
	o.agentArgs = strings.Fields(*agentArgs)
	if o.binary == "" {
		bin, err := proctest.Binary()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cpgload:", err)
			os.Exit(1)
		}
		o.binary = bin
	}
	var results []*result
	start := time.Now()
	for _, name := range strings.Split(*workloads, ",") {
		w, ok := workloadsByName[strings.TrimSpace(name)]
		if !ok {
			fmt.Fprintf(os.Stderr, "cpgload: unknown workload %q\n", name)
			os.Exit(2)
		}
		res := &result{name: w.name, clients: w.clients(&o)}
		for run := range *runs {
			r, err := w.run(&o)
			if err != nil {
				fmt.Fprintf(os.Stderr, "cpgload: %s, run %d: %v\n", w.name, run+1, err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "%s run %d: %s\n", w.name, run+1, r)
			res.runs = append(res.runs, r)
		}
		results = append(results, res)
	}
	printTable(os.Stdout, results)
	printAPICost(os.Stdout, results)
	fmt.Printf("\n%d runs per workload, %v measured each after %v of warm-up; took %v\n",
		*runs, o.duration, o.warmup, time.Since(start).Round(time.Second))
}
