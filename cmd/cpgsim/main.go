// Command cpgsim runs the simulator's named scenarios: it prints a table
// per scenario and writes the figures as CSV and PNG into a folder.
//
//	go run ./cmd/cpgsim -scenario steady -nodes 10000 -broadcasts 100 -seed 1 -out sim/out
//	go run ./cmd/cpgsim -scenario all -nodes 1000
//
// Scenarios: steady, failure, churn, overlay, mix, registry, all.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cpggo/cpg/sim"
	"github.com/cpggo/cpg/sim/memberlistpeer"
)

type options struct {
	scenario   string
	nodes      int
	broadcasts int
	after      int
	sources    int
	seed       uint64
	out        string
	peers      bool
	fractions  []float64
	latency    sim.Latency
	loss       float64
	interval   time.Duration
	churnRate  float64
	duration   time.Duration
	owners     int
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cpgsim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("cpgsim", flag.ContinueOnError)
	var o options
	var fractions, latency string
	var latMin, latMax time.Duration
	fs.StringVar(&o.scenario, "scenario", "steady", "steady, failure, churn, overlay, mix, registry or all")
	fs.IntVar(&o.nodes, "nodes", 1000, "cluster size")
	fs.IntVar(&o.broadcasts, "broadcasts", 100, "steady: measured broadcasts")
	fs.IntVar(&o.after, "after", 10, "failure: broadcasts after the failure, one per -interval (default 1s)")
	fs.IntVar(&o.sources, "sources", 10, "distinct broadcasting nodes, each with its own Plumtree tree")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed gives the same run")
	fs.StringVar(&o.out, "out", filepath.Join("sim", "out"), "folder for CSV and PNG output")
	fs.BoolVar(&o.peers, "peers", true, "also run eager flooding and memberlist-style gossip on the same network")
	fs.StringVar(&fractions, "fractions", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.95", "failure: shares of nodes killed at once")
	fs.StringVar(&latency, "latency", "uniform", "uniform or lognormal")
	fs.DurationVar(&latMin, "latency-min", time.Millisecond, "uniform latency lower bound (lognormal: the median)")
	fs.DurationVar(&latMax, "latency-max", 5*time.Millisecond, "uniform latency upper bound (lognormal: the cap)")
	fs.Float64Var(&o.loss, "loss", 0, "probability that a message is lost")
	fs.DurationVar(&o.interval, "interval", 0, "time between broadcasts (0: the scenario's default)")
	fs.Float64Var(&o.churnRate, "churn-rate", 0, "churn: crashes and restarts per second (0: 1% of the nodes)")
	fs.DurationVar(&o.duration, "duration", time.Minute, "churn: how long nodes keep leaving and joining")
	fs.IntVar(&o.owners, "owners", 100, "registry: nodes that join members")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range strings.Split(fractions, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v >= 1 {
			return fmt.Errorf("-fractions: %q is not a share in (0, 1)", f)
		}
		o.fractions = append(o.fractions, v)
	}
	switch latency {
	case "uniform":
		o.latency = sim.Uniform{Min: latMin, Max: latMax}
	case "lognormal":
		o.latency = sim.LogNormal{Median: latMin, Sigma: 0.6, Max: latMax}
	default:
		return fmt.Errorf("-latency: %q is neither uniform nor lognormal", latency)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	scenarios := map[string]func(options) error{
		"steady": runSteady, "failure": runFailure, "churn": runChurn,
		"overlay": runOverlay, "mix": runMix, "registry": runRegistry,
	}
	order := []string{"steady", "failure", "churn", "overlay", "mix", "registry"}
	if o.scenario != "all" {
		if scenarios[o.scenario] == nil {
			return fmt.Errorf("-scenario: unknown %q (want %s or all)", o.scenario, strings.Join(order, ", "))
		}
		order = []string{o.scenario}
	}
	for _, name := range order {
		if err := scenarios[name](o); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func (o options) config() sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Seed = o.seed
	cfg.Latency = o.latency
	cfg.Loss = o.loss
	cfg.Gossip.NewQueue = func(numNodes func() int, retransmitMult int) sim.GossipQueue {
		return memberlistpeer.NewQueue(numNodes, retransmitMult)
	}
	return cfg
}

// clock measures a scenario's wall and CPU time.
type clock struct {
	wall time.Time
	cpu  time.Duration
}

func startClock() clock { return clock{time.Now(), cpuTime()} }

func (c clock) stop() (wall, cpu time.Duration) {
	return time.Since(c.wall), cpuTime() - c.cpu
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// printSpeed reports the simulator's own speed.
func printSpeed(st sim.Stats, simTime, wall, cpu time.Duration) {
	fmt.Printf("simulated %v in %v wall, %v CPU; %d events, %d messages: %.0f messages per second of wall time, %.0f per CPU second\n\n",
		simTime.Round(time.Millisecond), wall.Round(time.Millisecond), cpu.Round(time.Millisecond),
		st.Events, st.Messages, float64(st.Messages)/wall.Seconds(), float64(st.Messages)/cpu.Seconds())
}
