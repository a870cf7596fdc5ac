// Package sim is a deterministic discrete-event simulator that runs the
// project's pure packages — HyParView (membership/hyparview), Plumtree
// (broadcast/plumtree), and the registry's replication core
// (registry/replication) over its CRDT (crdt) — for thousands of nodes in
// one process, on simulated time.
//
// The cores are the production state machines, not models of them; the
// simulator swaps only what the drivers own: sockets, clocks and
// memberlist. It carries out each Ready, feeds HyParView's link changes to
// Plumtree, delivers Plumtree messages only over active links, reports lost
// connections with LinkFailed and failed short-lived sends with
// TransientFailed, and hands each core a memberlist stand-in as its
// Directory (the core decides when to mix, rejoin and reconnect); and it
// plays the network:
// per-message latency from a configurable distribution, FIFO links,
// connection setup for short-lived connections, random loss, crashes and
// restarts, and partitions. Beside Plumtree it runs two peers on the same
// network for comparison: eager flooding over the same overlay, and
// memberlist-style gossip through memberlist's own TransmitLimitedQueue,
// which package sim/memberlistpeer plugs in (Config.Gossip.NewQueue): the
// simulator itself imports only the system's pure packages.
//
// A run depends only on Config.Seed and the calls made: the same seed gives
// the same events, bit for bit (Simulator.TraceHash).
//
// Operators can size a cluster with it: build a Simulator, add nodes, and
// measure broadcasts and the overlay under the failures they expect; or run
// one of the named scenarios (Steady, MassFailure, Churn, Shape, Registry), which
// is what cmd/cpgsim does.
package sim
