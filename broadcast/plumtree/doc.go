// Package plumtree is Plumtree (Leitão, Pereira and Rodrigues, "Epidemic
// Broadcast Trees", SRDS 2007, revised 2019) as a pure state machine: no
// goroutines, sockets or clock, time counted in ticks and randomness
// injected. Inputs are method calls (NeighborUp, NeighborDown, Broadcast,
// Step, Tick); outputs are values returned by Ready. Whether a message is
// new, already known or a true duplicate is the application's call through
// a per-topic Handler, so the protocol keeps no unbounded cache of message
// ids. The broadcast package drives it over the membership overlay; the
// simulator drives the very same code at 10,000 nodes.
package plumtree
