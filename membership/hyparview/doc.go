// Package hyparview is the HyParView membership protocol (Leitão, Pereira
// and Rodrigues, DSN 2007) as a pure state machine: no goroutines, sockets
// or clock, time counted in ticks and randomness injected. Input arrives
// through Join, Step, LinkFailed and Tick; what the node must do comes back
// from Ready. The membership package drives it over TCP and memberlist; the
// simulator drives the very same code at 10,000 nodes.
package hyparview
