//go:build race

package main

// raceDetector: memory figures mean nothing under the race detector.
const raceDetector = true
