package sim_test

import (
	"fmt"
	"time"

	"github.com/cpggo/cpg/sim"
)

// Drive the simulator by hand: start a cluster, broadcast, crash nodes, and
// measure.
func ExampleSimulator() {
	s, err := sim.New(sim.DefaultConfig())
	if err != nil {
		panic(err)
	}
	s.AddNodes(200, time.Millisecond) // one joins every millisecond
	s.RunFor(20 * time.Second)        // join and settle

	id, _ := s.Broadcast(0, sim.Plumtree)
	s.RunFor(time.Second)
	r := s.Result(id)
	fmt.Printf("delivered to %d of %d nodes\n", r.Delivered, r.Eligible)

	s.Crash(s.LiveNodes()[100:]...) // half the cluster dies at once
	s.RunFor(30 * time.Second)
	fmt.Printf("survivors connected again: %v\n", s.Overlay(0).Connected())
	// Output:
	// delivered to 200 of 200 nodes
	// survivors connected again: true
}

// Run a named scenario: the steady state of a 300-node cluster.
func ExampleSteady() {
	res, err := sim.Steady{
		Config:     sim.DefaultConfig(),
		Cluster:    sim.Cluster{Nodes: 300},
		Broadcasts: 10,
	}.Run()
	if err != nil {
		panic(err)
	}
	sum := sim.Summarize(sim.Plumtree, res.Results)
	fmt.Printf("reliability %.2f, RMR below 0.05: %v\n", sum.Reliability, sum.RMR < 0.05)
	// Output:
	// reliability 1.00, RMR below 0.05: true
}
