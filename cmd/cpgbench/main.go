// Command cpgbench measures a cpgd cluster of real OS processes on this
// host, in the workloads OTP pg's benchmark runs, so the two can be set
// side by side:
//
//	go run ./cmd/cpgbench [-trials 3] [-workloads w2,w3,w4] [-nodes 3,5] [-joiner embedded|http] [-observers embedded|agents] [-profile lan] [-json FILE]
//	go run ./cmd/cpgbench -plot FILE -peer PG_RESULTS.json [-figures docs/figures]
//
// w2: propagation of joins from one node to every other (paced at about
// 500 joins/s; bursts of 2,000 joins into one group and into 200 groups):
// a join is visible on an observer from the time that observer applied it
// (its watch events carry it, as pg's observers stamp their
// notifications), and the table also says when the watchers took the last
// one. Node A makes its joins either as a Go program with an embedded
// registry node (as pg's node A calls pg:join itself) or through a cpgd
// agent's HTTP API, one request per join (-joiner); the other nodes are
// Go programs with embedded registry nodes watching in process (as pg's
// observers have a process of their own VM watch) or cpgd agents watched
// over HTTP, whose streams cost CPU on the shared cores (-observers). w3: purge of a node's 1,000 members after kill -9 and after
// SIGSTOP; w4: convergence after a short partition (no link lost)
// and a long one (each side declared the other dead) heals. Every trial
// runs on fresh processes; the table shows the median and the range over
// the trials. w4 needs root and iproute2 (network namespaces). The nodes
// run cpgd's default failure detector timings (memberlist's LAN ones)
// unless -profile says otherwise.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// profile is cpgd's --gossip-profile for every node.
var profile = flag.String("profile", "lan", "cpgd's --gossip-profile: lan (the default) or loopback")

func main() {
	trials := flag.Int("trials", 3, "trials per workload, each on fresh processes")
	workloads := flag.String("workloads", "w2,w3,w4", "comma-separated workloads: w2 (join propagation), w3 (purge), w4 (partition heal)")
	nodes := flag.String("nodes", "3,5", "cluster sizes for w2")
	joiner := flag.String("joiner", "", "w2's node A: embedded (a Go program's registry node), http (a cpgd agent, one request per join) or both (empty)")
	observers := flag.String("observers", "", "w2's other nodes: embedded (Go programs' registry nodes, watching in process as pg's observers do), agents (cpgd agents watched over HTTP) or both (empty)")
	jsonOut := flag.String("json", "", "also write the results to this file, in the shape of OTP pg's results.json")
	plotFrom := flag.String("plot", "", "measure nothing: draw the README's headline charts from this results file (-json's) and -peer's into -figures")
	peer := flag.String("peer", "", "OTP pg's results.json, for -plot")
	figures := flag.String("figures", "docs/figures", "directory of the charts -plot draws")
	flag.Parse()
	if *plotFrom != "" {
		if err := plotFiles(*plotFrom, *peer, *figures); err != nil {
			fmt.Fprintln(os.Stderr, "cpgbench:", err)
			os.Exit(1)
		}
		return
	}
	if join, ok := os.LookupEnv(embeddedNodeEnv); ok {
		if err := runEmbeddedNode(join, os.Getenv(embeddedNameEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "cpgbench joining node:", err)
			os.Exit(1)
		}
		return
	}
	var sizes []int
	for _, s := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			fmt.Fprintf(os.Stderr, "cpgbench: -nodes %q: want sizes of 2 or more\n", *nodes)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	t := &table{}
	start := time.Now()
	for _, w := range strings.Split(*workloads, ",") {
		var err error
		switch strings.TrimSpace(w) {
		case "w2":
			err = runPropagation(t, sizes, *trials, *joiner, *observers)
		case "w3":
			err = runPurge(t, *trials)
		case "w4":
			err = runPartition(t, *trials)
		default:
			err = fmt.Errorf("unknown workload %q", w)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cpgbench:", err)
			os.Exit(1)
		}
	}
	t.print(os.Stdout)
	if *jsonOut != "" {
		if err := t.writeJSON(*jsonOut, *trials, runtime.NumCPU()); err != nil {
			fmt.Fprintln(os.Stderr, "cpgbench:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("\n%d trials per row; took %v\n", *trials, time.Since(start).Round(time.Second))
}

func plotFiles(oursPath, peerPath, dir string) error {
	if peerPath == "" {
		return errors.New("-plot needs -peer (OTP pg's results.json)")
	}
	ours, err := readResults(oursPath)
	if err != nil {
		return err
	}
	pg, err := readResults(peerPath)
	if err != nil {
		return err
	}
	return plotHeadlines(ours, pg, dir)
}
