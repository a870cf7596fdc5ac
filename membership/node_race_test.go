//go:build race

package membership

// The race detector slows the nodes several-fold; timings of the network
// tests stretch by this factor so that they test behaviour, not speed.
const testTimeScale = 3
