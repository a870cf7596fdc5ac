package main

import (
	"fmt"
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// comparison is one bar pair of a headline chart: the same measure in
// cpgbench's results and in OTP pg's.
type comparison struct {
	label                string
	ours                 [3]string // workload, metric, unit
	pgWorkload, pgMetric string
	pgUnit               string
}

// headlines are the charts the README shows: what a user of pg would
// compare first. Times in milliseconds, on a log scale.
var headlines = []struct {
	file, title string
	bars        []comparison
}{
	{"bench-propagation-5n.png", "Join propagation, 5 nodes (ms, log scale; lower is better)", []comparison{
		{"2,000 joins, 1 group:\nall visible", [3]string{"W2 5n one_group (embedded A)", "all visible on all nodes", "ms after 1st join call"},
			"W2", "5n one_group: all visible on all nodes", "ms after 1st join call"},
		{"2,000 joins, 200 groups:\nall visible", [3]string{"W2 5n groups_200 (embedded A)", "all visible on all nodes", "ms after 1st join call"},
			"W2", "5n groups_200: all visible on all nodes", "ms after 1st join call"},
		{"paced 500/s:\np99 latency", [3]string{"W2 5n paced (embedded A)", "latency p99", "us after join returned"},
			"W2", "5n paced: latency p99", "us after join returned"},
	}},
	{"bench-purge.png", "Purge of a dead node's 1,000 members (ms, log scale; lower is better)", []comparison{
		{"kill -9", [3]string{"W3 kill9", "all 1000 of A's members purged (slowest observer)", "ms after the signal"},
			"W3", "kill9: all 1000 of A's members purged (slowest obs.)", "ms after kill"},
		{"SIGSTOP (pg: net_ticktime 4 s,\ndefault 60 s)", [3]string{"W3 sigstop", "all 1000 of A's members purged (slowest observer)", "ms after the signal"},
			"W3", "sigstop: all 1000 of A's members purged (slowest obs.)", "ms after kill"},
	}},
}

// plotHeadlines draws each headline chart from a cpgbench results file and
// an OTP pg results file into dir. A bar whose figure is missing from
// either file is left out, and said so.
func plotHeadlines(ours, pg results, dir string) error {
	for _, h := range headlines {
		var labels []string
		var cpgVals, pgVals plotter.Values
		for _, b := range h.bars {
			o, okO := ours.median(b.ours[0], b.ours[1], b.ours[2])
			p, okP := pg.median(b.pgWorkload, b.pgMetric, b.pgUnit)
			if !okO || !okP {
				fmt.Printf("%s: no figure for %q in one of the files; left out\n", h.file, b.label)
				continue
			}
			if b.ours[2] == "us after join returned" {
				o, p = o/1000, p/1000
			}
			labels = append(labels, b.label)
			cpgVals = append(cpgVals, o)
			pgVals = append(pgVals, p)
		}
		if len(labels) == 0 {
			continue
		}
		p := plot.New()
		p.Title.Text = h.title
		p.Y.Label.Text = "ms"
		p.Y.Scale = floorLogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		w := vg.Points(28)
		for k, s := range []struct {
			name string
			vals plotter.Values
		}{{"cpg (Go)", cpgVals}, {"OTP pg", pgVals}} {
			bars, err := plotter.NewBarChart(s.vals, w)
			if err != nil {
				return err
			}
			bars.Color = plotutil.Color(k)
			bars.LineStyle.Color = color.Black
			bars.Offset = w * vg.Length(float64(k)-0.5)
			p.Add(bars)
			p.Legend.Add(s.name, bars)
		}
		p.Legend.Top = true
		p.Legend.Left = true
		p.NominalX(labels...)
		p.X.Min, p.X.Max = -0.7, float64(len(labels))-0.3
		// Bars stand on zero, which a log scale cannot show: the axis starts
		// below the smallest bar instead.
		p.Y.Min = min(slices.Min(cpgVals), slices.Min(pgVals)) / 2
		p.Y.Max = max(slices.Max(cpgVals), slices.Max(pgVals)) * 2
		path := filepath.Join(dir, h.file)
		if err := p.Save(20*vg.Centimeter, 11*vg.Centimeter, path); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	return nil
}

// floorLogScale is a log scale that puts values below the axis' minimum
// (a bar's foot at zero) on the axis, where a plain log scale refuses them.
type floorLogScale struct{}

func (floorLogScale) Normalize(lo, hi, x float64) float64 {
	return plot.LogScale{}.Normalize(lo, hi, max(x, lo))
}
