package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// table collects each metric's value per trial, in the order first seen.
type table struct {
	rows []*row
}

type row struct {
	workload, metric, unit string
	values                 []float64
	notes                  []string
}

func (t *table) add(workload, metric, unit string, v float64) {
	for _, r := range t.rows {
		if r.workload == workload && r.metric == metric && r.unit == unit {
			r.values = append(r.values, v)
			return
		}
	}
	t.rows = append(t.rows, &row{workload: workload, metric: metric, unit: unit, values: []float64{v}})
}

// note records a non-numeric outcome of a trial (an overflow, a timeout).
func (t *table) note(workload, metric, text string) {
	for _, r := range t.rows {
		if r.workload == workload && r.metric == metric {
			r.notes = append(r.notes, text)
			return
		}
	}
	t.rows = append(t.rows, &row{workload: workload, metric: metric, notes: []string{text}})
}

func (t *table) print(w io.Writer) {
	fmt.Fprintln(w, "| W | metric | median (min..max) | unit |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range t.rows {
		cell := ""
		if len(r.values) > 0 {
			v := slices.Clone(r.values)
			slices.Sort(v)
			cell = fmt.Sprintf("%s (%s..%s)", num(median(v)), num(v[0]), num(v[len(v)-1]))
		}
		for _, n := range r.notes {
			cell += " " + n
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.workload, r.metric, cell, r.unit)
	}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func num(v float64) string {
	switch {
	case v >= 1000 || v <= -1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// percentile is the nearest-rank percentile p (0..100) of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
