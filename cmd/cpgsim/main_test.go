package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEveryScenarioWritesItsFigures(t *testing.T) {
	out := t.TempDir()
	stdout := os.Stdout
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	os.Stdout = devnull // the tables are not this test's concern
	err = run([]string{"-scenario", "all", "-nodes", "60", "-broadcasts", "5", "-after", "3", "-owners", "10",
		"-fractions", "0.5,0.8", "-duration", "10s", "-out", out})
	os.Stdout = stdout
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"steady-60-5.csv", "steady-60-5-payload.png", "steady-60-5-ldh.png",
		"failure-60.csv", "failure-60-healing.csv", "failure-60-reliability.png", "failure-60-healing.png",
		"churn-60.csv", "churn-60.png", "overlay-60.csv", "overlay-60.png", "mix-60.csv", "registry-60.csv",
	} {
		fi, err := os.Stat(filepath.Join(out, name))
		if err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", name, err)
		}
	}
	csv, err := os.ReadFile(filepath.Join(out, "steady-60-5.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(csv), "\nmeasured,"); got != 15 {
		t.Errorf("steady CSV has %d measured rows, want 5 broadcasts x 3 protocols", got)
	}
}

func TestBadFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope"},
		{"-fractions", "1.5"},
		{"-latency", "pareto"},
	} {
		if err := run(append(args, "-out", t.TempDir())); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
