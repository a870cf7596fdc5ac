package registry

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchmarkIndex stores n patterns in a mix modelled on service
// registries: per-service subtrees, per-service wildcards under a shared
// short prefix, and patterns with an empty literal prefix.
func benchmarkIndex(n int) *patternIndex[int] {
	x := &patternIndex[int]{}
	for i := 0; x.len() < n; i++ {
		var key string
		switch i % 6 {
		case 0:
			key = fmt.Sprintf("/svc/%d/*", i)
		case 1:
			key = fmt.Sprintf("/svc/%d/?/db", i)
		case 2:
			key = fmt.Sprintf("/region/*/svc%d", i) // shared prefix "/region/"
		case 3:
			key = fmt.Sprintf("/region/?/svc%d/*", i) // shared prefix, no suffix
		case 4:
			key = fmt.Sprintf("*/job%d", i) // empty prefix
		case 5:
			key = fmt.Sprintf("/svc/%d/*/eu", i)
		}
		x.insert(key, i)
	}
	return x
}

// benchmarkNames returns lookups that hit every kind of pattern in the mix
// (lookup j hits a key of kind j%6), and one in seven that hits nothing.
func benchmarkNames(n, count int) []string {
	rng := rand.New(rand.NewPCG(7, 8))
	names := make([]string, count)
	for j := range names {
		kind := j % 7
		i := 6*rng.IntN(n/6) + kind
		switch kind {
		case 0:
			names[j] = fmt.Sprintf("/svc/%d/cache/eu", i)
		case 1:
			names[j] = fmt.Sprintf("/svc/%d/primary/db", i)
		case 2:
			names[j] = fmt.Sprintf("/region/eu-west-1/svc%d", i)
		case 3:
			names[j] = fmt.Sprintf("/region/eu/svc%d/api", i)
		case 4:
			names[j] = fmt.Sprintf("/batch/nightly/job%d", i)
		case 5:
			names[j] = fmt.Sprintf("/svc/%d/cache/eu", i)
		case 6:
			names[j] = fmt.Sprintf("/nothing/%d/here", i)
		}
	}
	return names
}

func BenchmarkPatternBest(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("patterns=%d", n), func(b *testing.B) {
			x := benchmarkIndex(n)
			names := benchmarkNames(n, 10_000) // spread over the whole index, as real traffic is
			for j, name := range names {
				if _, _, ok := x.best(name); ok != (j%7 != 6) {
					b.Fatalf("best(%q) matched: %v", name, ok)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				x.best(names[i%len(names)])
				i++
			}
		})
	}
}

func BenchmarkPatternMatchKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		matchKey("/svc/*/?/db/*/eu", "/svc/orders/primary/db/shard-17/eu")
	}
}

func BenchmarkPatternInsertRemove(b *testing.B) {
	x := benchmarkIndex(10_000)
	b.ReportAllocs()
	for b.Loop() {
		x.insert("/svc/new/?/db", 0)
		x.remove("/svc/new/?/db")
	}
}

// BenchmarkPatternBestManyStars looks up long names among keys made of as
// many wildcards as a pattern may have, where every start is a candidate:
// the worst case the memo of failed starts bounds.
func BenchmarkPatternBestManyStars(b *testing.B) {
	x := &patternIndex[int]{}
	for k := 1; k <= MaxWildcards-2; k++ {
		for _, end := range []string{"*b", "?b", "*a?b"} {
			x.insert(strings.Repeat("*a", k)+end, k)
		}
	}
	name := strings.Repeat("a", 300)
	b.ReportAllocs()
	for b.Loop() {
		x.best(name)
	}
}
