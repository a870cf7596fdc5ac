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
			cpu = roundDuration(c).String()
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %v | %v | %s | %s | %s |\n", r.name, r.clients,
			median(rates), roundDuration(median(p50s)), roundDuration(median(p99s)), cpu, strings.Join(each, ", "), r.runs[len(r.runs)-1].note)
	}
}

// roundDuration keeps three significant digits or so: microseconds for
// requests, nanoseconds for in-process calls.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(100 * time.Nanosecond)
	}
	return d
}

// printAPICost gives the API's cost over the embedded call: the lookup
// workload's time per request over the embedded one's time per lookup,
// both with the same number of concurrent callers (medians of the runs).
func printAPICost(w io.Writer, results []*result) {
	var api, embedded *result
	for _, r := range results {
		switch r.name {
		case "lookup":
			api = r
		case "embedded":
			embedded = r
		}
	}
	if api == nil || embedded == nil {
		return
	}
	rate := func(r *result) float64 {
		var xs []float64
		for _, s := range r.runs {
			xs = append(xs, s.perSecond())
		}
		return median(xs)
	}
	fmt.Fprintf(w, "\nAPI cost over the embedded call (lookups, %d callers each): %.0fx (%.0f/s in process, %.0f/s over HTTP)\n",
		api.clients, rate(embedded)/rate(api), rate(embedded), rate(api))
}
