package main

import (
	"runtime/debug"
)

// agentGCPercent is the garbage collector's target an agent runs with
// unless GOGC says otherwise: its heap grows by four times the live heap
// between collections instead of once. An agent's live heap is small (a
// few MB for thousands of members), so this costs a few MB. With Go's
// default, a fresh agent's small heap is collected several times during
// a burst of joins from another node, and each collection wakes workers
// on every core: four agents and a joining program sharing two cores had
// a 2,000-join burst applied everywhere in 23.2 ms instead of 27.4 (into
// 200 groups: 25.2 instead of 32.1; BENCHMARKS.md).
const agentGCPercent = 400

// applyGCDefault sets agentGCPercent unless the environment's GOGC (read
// with getenv) chose a target, and says whether it did.
func applyGCDefault(getenv func(string) string) bool {
	if getenv("GOGC") != "" {
		return false
	}
	debug.SetGCPercent(agentGCPercent)
	return true
}
