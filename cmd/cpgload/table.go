package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// result holds a workload's runs.
type result struct {
	name    string
	clients int
	runs    []sample
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// printTable prints one Markdown row per workload: the medians of its
// runs, and every run's rate.
func printTable(w io.Writer, results []*result) {
	fmt.Fprintln(w, "| workload | clients | requests/s (median) | p50 | p99 | agent CPU per request | runs, requests/s | notes (last run) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		var rates []float64
		var p50s, p99s, cpus []time.Duration
		var each []string
		for _, s := range r.runs {
			rates = append(rates, s.perSecond())
			p50s, p99s, cpus = append(p50s, s.p50), append(p99s, s.p99), append(cpus, s.cpuPerOp())
			each = append(each, fmt.Sprintf("%.0f", s.perSecond()))
		}
		cpu := "in process"
		if c := median(cpus); c > 0 {
			cpu = c.String()
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %v | %v | %s | %s | %s |\n", r.name, r.clients,
			median(rates), median(p50s).Round(time.Microsecond), median(p99s).Round(time.Microsecond), cpu, strings.Join(each, ", "), r.runs[len(r.runs)-1].note)
	}
}
