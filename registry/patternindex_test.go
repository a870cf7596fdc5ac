package registry

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPatternIndexStoreAndRemove(t *testing.T) {
	var x patternIndex[int]
	if _, _, ok := x.best("/a"); ok {
		t.Fatal("an empty index matched")
	}
	if x.remove("/a*") {
		t.Fatal("removed a key from an empty index")
	}
	x.insert("/a*", 1)
	x.insert("/a?/b", 2)
	x.insert("/a*", 3) // replaces
	if x.len() != 2 {
		t.Fatalf("len = %d, want 2", x.len())
	}
	if v, ok := x.get("/a*"); !ok || v != 3 {
		t.Fatalf("get(/a*) = %d, %v, want 3, true", v, ok)
	}
	if _, ok := x.get("/a"); ok {
		t.Fatal("get of an absent key succeeded")
	}
	if key, v, ok := x.best("/ax/b"); !ok || key != "/a?/b" || v != 2 {
		t.Fatalf("best(/ax/b) = %q, %d, %v", key, v, ok)
	}
	if !x.remove("/a?/b") || x.remove("/a?/b") {
		t.Fatal("remove must report true once, then false")
	}
	if key, v, ok := x.best("/ax/b"); !ok || key != "/a*" || v != 3 {
		t.Fatalf("after remove, best(/ax/b) = %q, %d, %v, want /a*", key, v, ok)
	}
	x.remove("/a*")
	if x.len() != 0 || x.root.size != 0 || x.root.only != nil || x.root.prefixes != nil {
		t.Fatalf("after removing everything: len %d, root %+v", x.len(), x.root)
	}
	if _, _, ok := x.best("/ab"); ok {
		t.Fatal("an emptied index matched")
	}
}

func TestPatternIndexBest(t *testing.T) {
	stored := []string{
		"/a*", "/*/b/c", "/a*c", "/?/a", "/*/a",
		"/svc/*", "/svc/*/eu", "/svc/?/eu", "/svc/db/*",
		"*", "?/x", "*/y",
	}
	var x patternIndex[string]
	for _, key := range stored {
		x.insert(key, key)
	}
	for _, tc := range []struct{ name, want string }{
		{"/a/b/c", "/a*c"}, // over "/a*" (star stops earlier) and "/*/b/c" (leftmost difference)
		{"/a/b/d", "/a*"},
		{"/b/b/c", "/*/b/c"},
		{"/alba-white/a", "/a*"}, // a literal "a" beats "/?/a" at the second step
		{"/blba-white/a", "/?/a"},
		{"/alba/white/a", "/a*"}, // "/?/a" does not match; "/a*" beats "/*/a" at the "a"
		{"/blba/white/a", "/*/a"},
		{"/svc/db/eu", "/svc/db/*"},
		{"/svc/mq/eu", "/svc/?/eu"},
		{"/svc/mq/eu/x/eu", "/svc/*/eu"}, // "?" would stop at the first "/"
		{"/svc/mq", "/svc/*"},
		// Keys starting with a wildcard live under the empty prefix.
		{"q/x", "?/x"},
		{"q/r/y", "*/y"},
		{"zzz", "*"},
	} {
		key, v, ok := x.best(tc.name)
		if !ok || key != tc.want || v != tc.want {
			t.Errorf("best(%q) = %q, %q, %v, want %q", tc.name, key, v, ok, tc.want)
		}
		if want, _ := bruteBest(stored, tc.name); want != tc.want {
			t.Errorf("brute force best(%q) = %q, want %q: the table is wrong", tc.name, want, tc.want)
		}
	}
}

// TestPatternIndexShortestQuestionWins stores several "?" with different
// stop characters under one prefix, in both orders.
func TestPatternIndexShortestQuestionWins(t *testing.T) {
	for _, stored := range [][]string{
		{"/?ab/x", "/?b/x", "/?/x", "/*/x"},
		{"/*/x", "/?/x", "/?b/x", "/?ab/x"},
	} {
		var x patternIndex[int]
		for i, key := range stored {
			x.insert(key, i)
		}
		for name, want := range map[string]string{
			"/cab/x":  "/?ab/x", // "?" takes "c" before "a", "ca" before "b", "cab" before "/"
			"/cb/x":   "/?b/x",
			"/cd/x":   "/?/x",
			"/ab/x":   "/?b/x", // "?a" cannot take nothing
			"/c/d/x":  "/*/x",  // "?/" stops at the first "/"
			"/cab/cx": "",      // nothing matches
		} {
			if got, _, _ := x.best(name); got != want {
				t.Errorf("stored %q: best(%q) = %q, want %q", stored, name, got, want)
			}
		}
	}
}

// TestPatternIndexDeepPath covers names whose path crosses more stored
// prefixes than best keeps on its stack.
func TestPatternIndexDeepPath(t *testing.T) {
	var x patternIndex[int]
	var stored []string
	for k := 3; k <= 30; k++ {
		stored = append(stored, strings.Repeat("a", k)+"*z") // never matches the names below
	}
	stored = append(stored, "a*", "aa*b")
	for i, key := range stored {
		x.insert(key, i)
	}
	for _, name := range []string{strings.Repeat("a", 30) + "b", strings.Repeat("a", 30) + "c", "aab"} {
		want, wantOK := bruteBest(stored, name)
		got, _, ok := x.best(name)
		if got != want || ok != wantOK {
			t.Errorf("best(%q) = %q, %v, want %q, %v", name, got, ok, want, wantOK)
		}
	}
	if got, _, _ := x.best(strings.Repeat("a", 30) + "b"); got != "aa*b" {
		t.Errorf("best = %q, want aa*b", got)
	}
}

// TestPatternIndexManyStarsStayPolynomial stores keys made of many stars,
// which nest star nodes in star nodes, and looks up long names where every
// start is a candidate and nothing matches at the end: without the memo of
// failed starts this takes time exponential in the number of stars.
func TestPatternIndexManyStarsStayPolynomial(t *testing.T) {
	var x patternIndex[int]
	var stored []string
	for k := 1; k <= 40; k++ {
		for _, end := range []string{"*b", "?b", "*a?b"} {
			key := strings.Repeat("*a", k) + end
			x.insert(key, len(stored))
			stored = append(stored, key)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, name := range []string{strings.Repeat("a", 300), strings.Repeat("a", 300) + "cb", strings.Repeat("ab", 150)} {
			got, _, ok := x.best(name)
			want, wantOK := bruteBest(stored, name)
			if got != want || ok != wantOK {
				t.Errorf("best(%.20q...) = %q, %v, want %q, %v", name, got, ok, want, wantOK)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("lookups among many-star keys did not finish in 30 s")
	}
}

// TestPatternIndexUnrelatedKeysDoNotChangeMatches shows that whether a key
// matches, and which key wins, never depends on keys that do not match:
// adding any number of them leaves every answer as it was. (CloudI's trie
// can lose a match when an unrelated key changes its layout.)
func TestPatternIndexUnrelatedKeysDoNotChangeMatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		keys := randomKeys(rng, 30)
		names := make([]string, 20)
		for i := range names {
			names[i] = randomName(rng)
		}
		var x patternIndex[int]
		for i, key := range keys[:10] {
			if isPattern(key) {
				x.insert(key, i)
			}
		}
		for _, name := range names {
			before, _, _ := x.best(name)
			var added []string
			for i, key := range keys[10:] {
				if isPattern(key) && !matchKey(key, name) {
					x.insert(key, 100+i)
					added = append(added, key)
					if got, _, _ := x.best(name); got != before {
						t.Fatalf("adding %q, which does not match %q, changed best from %q to %q (added so far %q)",
							key, name, before, got, added)
					}
				}
			}
			for _, key := range added {
				x.remove(key)
			}
			if got, _, _ := x.best(name); got != before {
				t.Fatalf("adding and removing %q changed best(%q) from %q to %q", added, name, before, got)
			}
		}
	}

	// The same from the other side: a key that matches alone keeps matching
	// however crowded its neighbourhood.
	var x patternIndex[int]
	x.insert("/a*", 0)
	if got, _, _ := x.best("/ab/c"); got != "/a*" {
		t.Fatalf("best = %q, want /a*", got)
	}
	for i, key := range []string{"/a*/d", "/ab*/d", "/ab/?/d", "/a?/c/d", "/ab/c*", "/*/c/d", "/a*x", "*/d"} {
		x.insert(key, i+1)
		if got, _, _ := x.best("/ab/c"); got != "/a*" {
			t.Fatalf("after adding %q, best(/ab/c) = %q, want /a*", key, got)
		}
	}
}

// TestPatternIndexAgreesWithBruteForce stores and removes random patterns and
// checks best against a scan of every stored key, ranked both with
// matchKey+moreSpecific and with the reference definitions.
func TestPatternIndexAgreesWithBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	universe := randomKeys(rng, 300)
	var patterns []string
	for _, key := range universe {
		if isPattern(key) {
			patterns = append(patterns, key)
		}
	}
	var x patternIndex[string]
	stored := make(map[string]bool)
	for round := range 3000 {
		key := patterns[rng.IntN(len(patterns))]
		if stored[key] {
			if !x.remove(key) {
				t.Fatalf("remove(%q) of a stored key returned false", key)
			}
			delete(stored, key)
		} else {
			x.insert(key, key)
			stored[key] = true
		}
		if x.len() != len(stored) {
			t.Fatalf("len = %d, want %d", x.len(), len(stored))
		}
		if round%10 != 0 {
			continue
		}
		keys := make([]string, 0, len(stored))
		for k := range stored {
			keys = append(keys, k)
		}
		for range 50 {
			name := randomName(rng)
			got, v, ok := x.best(name)
			want, wantOK := bruteBest(keys, name)
			if got != want || ok != wantOK || (ok && v != got) {
				t.Fatalf("best(%q) = %q, %v; brute force says %q, %v", name, got, ok, want, wantOK)
			}
			if ref, refOK := refBest(keys, name); ref != want || refOK != wantOK {
				t.Fatalf("best(%q): reference says %q, %v; brute force %q, %v", name, ref, refOK, want, wantOK)
			}
		}
	}
}

func TestPatternIndexBestDoesNotAllocate(t *testing.T) {
	x := benchmarkIndex(2000)
	names := benchmarkNames(2000, 64)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		x.best(names[i%len(names)])
		i++
	})
	if allocs != 0 {
		t.Fatalf("best allocates %.1f times per call, want 0", allocs)
	}
}

// TestPatternIndexConcurrentLookups shows, under -race, that best only
// reads: lookups may share a read lock.
func TestPatternIndexConcurrentLookups(t *testing.T) {
	x := benchmarkIndex(600)
	x.insert("*a*b*c", -1) // nested stars, so lookups use their memo
	names := append(benchmarkNames(600, 64), "xaybzc", "/a/b/c/a/b")
	want := make([]string, len(names))
	for i, name := range names {
		want[i], _, _ = x.best(name)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				for i, name := range names {
					if got, _, _ := x.best(name); got != want[i] {
						t.Errorf("concurrent best(%q) = %q, want %q", name, got, want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// bruteBest ranks every key with matchKey and moreSpecific.
func bruteBest(keys []string, name string) (string, bool) {
	best, found := "", false
	for _, key := range keys {
		if matchKey(key, name) && (!found || moreSpecific(key, best, name)) {
			best, found = key, true
		}
	}
	return best, found
}

// refBest ranks every key with the reference definitions.
func refBest(keys []string, name string) (string, bool) {
	best, found := "", false
	for _, key := range keys {
		if refMatch(key, name) && (!found || refCompare(key, best, name) < 0) {
			best, found = key, true
		}
	}
	return best, found
}
