//go:build race

package testcluster

// timeScale stretches the clusters' failure detection under the race
// detector, which slows every node several-fold (see Config.TimeScale).
const timeScale = 3
