//go:build race

package broadcast

// raceEnabled: the race detector slows every goroutine several times over,
// enough for eager copies to miss the graft timeout on a loaded machine.
const raceEnabled = true
