package main

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func newTable() *tabwriter.Writer {
	return tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// writeCSV writes rows (the first is the header) to dir/name.
func writeCSV(dir, name string, rows [][]string) error {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(rows); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", filepath.Join(dir, name))
	return nil
}

// series is one named line of a chart.
type series struct {
	name string
	xys  plotter.XYs
}

// lineChart saves a chart of lines to dir/name.
func lineChart(dir, name, title, xLabel, yLabel string, lines []series, logY bool) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	var args []any
	for _, l := range lines {
		args = append(args, l.name, l.xys)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	p.Legend.Top = true
	return save(p, dir, name)
}

// barChart saves a chart with one bar per label, for each group of values.
func barChart(dir, name, title, yLabel string, labels []string, groups []series) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	w := vg.Points(60 / float64(max(1, len(groups))))
	for k, g := range groups {
		vals := make(plotter.Values, len(g.xys))
		for i, xy := range g.xys {
			vals[i] = xy.Y
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.Color = plotutil.Color(k)
		bars.LineStyle.Color = color.Black
		bars.Offset = w * vg.Length(float64(k)-float64(len(groups)-1)/2)
		p.Add(bars)
		p.Legend.Add(g.name, bars)
	}
	p.Legend.Top = true
	p.NominalX(labels...)
	return save(p, dir, name)
}

func save(p *plot.Plot, dir, name string) error {
	path := filepath.Join(dir, name)
	if err := p.Save(18*vg.Centimeter, 11*vg.Centimeter, path); err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", path)
	return nil
}

func f64(v float64) string { return fmt.Sprintf("%.4f", v) }
