package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var samples []time.Duration
	for i := 1; i <= 200; i++ {
		samples = append(samples, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 100}, {99, 198}, {100, 200}, {0, 1}} {
		if got := percentile(samples, c.p); got != c.want {
			t.Errorf("p%v of 1..200 = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestTableShowsMedianAndRangePerMetricAndUnit(t *testing.T) {
	tb := &table{}
	for _, v := range []float64{3, 1, 2} {
		tb.add("W", "visible", "ms after call", v)
		tb.add("W", "visible", "ms after return", 10*v)
	}
	var out strings.Builder
	tb.print(&out)
	for _, want := range []string{"| W | visible | 2.00 (1.00..3.00) | ms after call |", "| W | visible | 20.0 (10.0..30.0) | ms after return |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestResultsFileRoundTripsMedians(t *testing.T) {
	tb := &table{}
	for _, v := range []float64{3, 1, 2} {
		tb.add("W3 kill9", "purged", "ms", v)
	}
	tb.note("W3 kill9", "reason", "closed")
	path := filepath.Join(t.TempDir(), "r.json")
	if err := tb.writeJSON(path, 3, 2); err != nil {
		t.Fatal(err)
	}
	r, err := readResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := r.median("W3 kill9", "purged", "ms"); !ok || m != 2 {
		t.Fatalf("median %v %v, want 2", m, ok)
	}
	if _, ok := r.median("W3 kill9", "reason", ""); ok {
		t.Fatal("a row with notes only has no median")
	}
}
