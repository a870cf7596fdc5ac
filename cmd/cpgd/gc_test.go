package main

import (
	"runtime/debug"
	"testing"
)

func TestAgentsCollectGarbageLessOftenUnlessGOGCSaysSo(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	if !applyGCDefault(func(string) string { return "" }) {
		t.Fatal("with no GOGC, the agent's default was not applied")
	}
	if got := debug.SetGCPercent(100); got != agentGCPercent {
		t.Fatalf("GC percent %d, want %d", got, agentGCPercent)
	}
	if applyGCDefault(func(k string) string { return map[string]string{"GOGC": "50"}[k] }) {
		t.Fatal("GOGC=50 was overridden")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set, the GC percent moved to %d", got)
	}
}
