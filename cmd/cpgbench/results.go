package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

// result is one row of a results file: the shape OTP pg's benchmark
// writes (its results.json), so the two can be read by the same code.
type result struct {
	Workload string  `json:"workload"`
	Metric   string  `json:"metric"`
	Unit     string  `json:"unit"`
	Median   any     `json:"median"` // a number, or text for a non-numeric outcome
	Min      float64 `json:"min,omitempty"`
	Max      float64 `json:"max,omitempty"`
	Values   any     `json:"values,omitempty"` // numbers, or text
}

type results struct {
	Date    string   `json:"date"`
	Cores   int      `json:"cores,omitempty"`
	Trials  int      `json:"trials,omitempty"`
	Results []result `json:"results"`
}

// writeJSON saves the table as a results file.
func (t *table) writeJSON(path string, trials, cores int) error {
	out := results{Date: time.Now().UTC().Format(time.RFC3339), Cores: cores, Trials: trials}
	for _, r := range t.rows {
		if len(r.values) == 0 {
			continue
		}
		v := slices.Clone(r.values)
		slices.Sort(v)
		out.Results = append(out.Results, result{
			Workload: r.workload, Metric: r.metric, Unit: r.unit,
			Median: median(v), Min: v[0], Max: v[len(v)-1], Values: r.values,
		})
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func readResults(path string) (results, error) {
	var r results
	data, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// median returns the numeric median of a row and whether it has one.
func (r results) median(workload, metric, unit string) (float64, bool) {
	for _, x := range r.Results {
		if x.Workload == workload && x.Metric == metric && x.Unit == unit {
			v, ok := x.Median.(float64)
			return v, ok
		}
	}
	return 0, false
}
