package registry

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMatchKey(t *testing.T) {
	for _, tc := range []struct {
		key, name string
		want      bool
	}{
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/bc", false},
		{"/a/b", "/a/", false},

		// "*" takes one or more characters, crosses "/" and backtracks.
		{"/a*", "/a", false},
		{"/a*", "/ab", true},
		{"/a*", "/ab/c/d", true},
		{"/a*c", "/abcbc", true},
		{"/a*c", "/abcbd", false},
		{"/*/x", "/a/b/x", true},
		{"/*/x", "//x", false},
		{"*", "x", true},
		{"*b*b", "abbb", true},
		{"*b*b", "abb", false},
		{"a*a*a", "aaaaa", true},
		{"a*a*a", "aaaa", false},

		// "?" takes up to the first occurrence of the next literal, at
		// least one character, and never backtracks.
		{"/?/a", "/alba-white/a", true},
		{"/?/a", "/alba/white/a", false},
		{"/*/a", "/alba/white/a", true},
		{"/?/a", "//a", false},
		{"?b", "ab", true},
		{"?b", "abb", false}, // the "?" stops at the first b
		{"?b", "b", false},
		{"/?x*", "/ax", false},
		{"/?x*", "/axy", true},
		{"*/?b", "/a/cb", true},
		{"*/?b", "/a/cb", true},
		{"*/?b", "/a/cbb", false}, // "?" stops at the first b and cannot take the second
		{"*/?b/c", "/a/xb/c", true},
		{"*/?b/c", "/a/xbb/c", false},

		// Multi-byte literals after "?".
		{"/?é", "/caré", true},
		{"/?é", "/carè", false},
		{"/?é/x", "/aèé/x", true},
	} {
		if got := matchKey(tc.key, tc.name); got != tc.want {
			t.Errorf("matchKey(%q, %q) = %v, want %v", tc.key, tc.name, got, tc.want)
		}
		if ref := refMatch(tc.key, tc.name); ref != tc.want {
			t.Errorf("reference match(%q, %q) = %v, want %v: the table is wrong", tc.key, tc.name, ref, tc.want)
		}
	}
}

func TestAlignmentSignature(t *testing.T) {
	for _, tc := range []struct {
		key, name string
		want      string
	}{
		{"/a/b", "/a/b", "L1 L1 L1 L1"},
		{"/a*c", "/abcbc", "L1 L1 *3 L1"},         // the star backtracks past the first c
		{"/*/x", "/a/b/x", "L1 *3 L1 L1"},         // and crosses "/"
		{"a*a*a", "aaaaa", "L1 *1 L1 *1 L1"},      // the leftmost star takes the fewest
		{"*a*", "baaab", "*1 L1 *3"},              // the trailing star takes the rest
		{"/?/a", "/alba-white/a", "L1 ?10 L1 L1"}, // "?" takes up to the next "/"
		{"*/?b", "/a/cb", "*2 L1 ?1 L1"},
		{"/?é", "/caré", "L1 ?3 L1 L1"}, // lengths are in bytes; é is two literal bytes
	} {
		if got := signatureString(tc.key, tc.name); got != tc.want {
			t.Errorf("signature(%q, %q) = %q, want %q", tc.key, tc.name, got, tc.want)
		}
	}
}

func signatureString(key, name string) string {
	var parts []string
	a := aligner{key: key, name: name}
	for {
		kind, n, ok := a.next()
		if !ok {
			break
		}
		parts = append(parts, fmt.Sprintf("%s%d", [...]string{"L", "?", "*"}[kind], n))
	}
	return strings.Join(parts, " ")
}

func TestMoreSpecific(t *testing.T) {
	for _, tc := range []struct {
		name        string
		better      string
		worse       string
		explanation string
	}{
		{"/a/b/c", "/a/b/c", "/a/b/*", "an exact name beats every pattern"},
		{"/a/b/c", "/a/b/c", "*/b/c", "an exact name beats a pattern starting with a wildcard"},
		{"/a/b/c", "/a*", "/*/b/c", "the difference at the leftmost position decides"},
		{"/abc", "/a*c", "/a*", "a key ending in * loses to one continuing after a shorter *"},
		{"/a/b", "/?/b", "/*/b", "? is more specific than * at the same position"},
		{"/a/b", "/?/b", "/*", "? is more specific than * at the same position"},
		{"/ab/c", "/a*/c", "/*b/c", "a literal beats a wildcard at the same position"},
		{"/abcbc", "/a*bc", "/a*c", "the shorter star wins, whatever follows it"},
		{"/svc/db/eu", "/svc/*/eu", "/svc/*", "the shorter star wins"},
		{"/svc/db/eu", "/svc/?/eu", "/svc/*/eu", "? beats * at the same step"},
		{"/x/y/z", "*/z", "*", "the shorter leading star wins"},
		{"/ab/c/d", "/?/c/*", "/?/*/d", "after equal ?, the literal beats the star"},
	} {
		if !matchKey(tc.better, tc.name) || !matchKey(tc.worse, tc.name) {
			t.Fatalf("%q and %q must both match %q", tc.better, tc.worse, tc.name)
		}
		if !moreSpecific(tc.better, tc.worse, tc.name) {
			t.Errorf("moreSpecific(%q, %q, %q) = false, want true: %s", tc.better, tc.worse, tc.name, tc.explanation)
		}
		if moreSpecific(tc.worse, tc.better, tc.name) {
			t.Errorf("moreSpecific(%q, %q, %q) = true, want false: %s", tc.worse, tc.better, tc.name, tc.explanation)
		}
		if got := refCompare(tc.better, tc.worse, tc.name); got >= 0 {
			t.Errorf("reference compare(%q, %q, %q) = %d, want < 0: the table is wrong", tc.better, tc.worse, tc.name, got)
		}
	}
	if moreSpecific("/a*", "/a*", "/ab") {
		t.Error("a key is not more specific than itself")
	}
}

func TestWatchMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, group string
		want          bool
	}{
		{"/svc/db", "/svc/db", true},
		{"/svc/db", "/svc/dbx", false},
		{"/svc/*", "/svc/db", true},
		{"/svc/*", "/svc/?/eu", true}, // a pattern group, read literally
		{"/svc/*", "/svc/*", true},
		{"/svc/db", "/svc/*", false}, // a concrete filter sees only its own group
		{"/svc/?/eu", "/svc/db/eu", true},
		{"/svc/?/eu", "/svc/*/eu", true},
		{"/svc/?/eu", "/svc/db/us", false},
	} {
		if got := watchMatches(tc.filter, tc.group); got != tc.want {
			t.Errorf("watchMatches(%q, %q) = %v, want %v", tc.filter, tc.group, got, tc.want)
		}
	}
}

// TestMatchKeyAgreesWithReference checks matchKey and moreSpecific against a
// direct recursive reading of the rules on random keys and names over a
// small alphabet, where collisions between wildcards and literals are
// frequent.
func TestMatchKeyAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := randomKeys(rng, 400)
	matches, pairs := 0, 0
	for range 4000 {
		name := randomName(rng)
		var matched []string
		for _, key := range keys {
			got, want := matchKey(key, name), refMatch(key, name)
			if got != want {
				t.Fatalf("matchKey(%q, %q) = %v, reference says %v", key, name, got, want)
			}
			if got {
				matched = append(matched, key)
				matches++
			}
		}
		for i, a := range matched {
			for _, b := range matched[i+1:] {
				pairs++
				ref := refCompare(a, b, name)
				if ref == 0 {
					t.Fatalf("distinct keys %q and %q have the same signature for %q", a, b, name)
				}
				if got := moreSpecific(a, b, name); got != (ref < 0) {
					t.Fatalf("moreSpecific(%q, %q, %q) = %v, reference compare says %d", a, b, name, got, ref)
				}
				if got := moreSpecific(b, a, name); got != (ref > 0) {
					t.Fatalf("moreSpecific(%q, %q, %q) = %v, reference compare says %d", b, a, name, got, -ref)
				}
			}
		}
	}
	t.Logf("%d matches, %d ranked pairs", matches, pairs)
	if matches < 1000 || pairs < 1000 {
		t.Fatalf("only %d matches and %d ranked pairs: the generator no longer exercises the matcher", matches, pairs)
	}
}

// FuzzPattern checks that validation, matching and the index never panic,
// and that matchKey agrees with the reference matcher on valid keys.
func FuzzPattern(f *testing.F) {
	for _, seed := range [][2]string{
		{"/a*c", "/abcbc"},
		{"/?/a", "/alba-white/a"},
		{"/*/x", "/a/b/x"},
		{"*", "x"},
		{"/a?", "/ab"},
		{"/a**b", "/aab"},
		{"/?é", "/caré"},
		{"a*a*a", "aaaaaaa"},
		{"", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, key, name string) {
		validErr := validateGroupName(key)
		_ = validateLookupName(name)
		got := matchKey(key, name) // must not panic even on invalid keys
		_ = watchMatches(key, name)
		if validErr != nil || !utf8.ValidString(name) {
			return
		}
		// The reference matcher is exponential; keep it to short inputs.
		if utf8.RuneCountInString(key) <= 16 && utf8.RuneCountInString(name) <= 16 {
			if want := refMatch(key, name); got != want {
				t.Fatalf("matchKey(%q, %q) = %v, reference says %v", key, name, got, want)
			}
		}
		if !isPattern(key) {
			return
		}
		// Store the key beside its own prefix and suffix variations and
		// check best against a brute-force ranking.
		var x patternIndex[int]
		keys := []string{key, "*"}
		if p := literalPrefix(key); p != "" {
			keys = append(keys, p+"*")
		}
		if s := key[strings.LastIndexAny(key, "*?")+1:]; s != "" {
			keys = append(keys, "*"+s, "?"+s)
		}
		for i, k := range keys {
			x.insert(k, i)
		}
		gotKey, _, ok := x.best(name)
		wantKey, wantOK := bruteBest(keys, name)
		if ok != wantOK || gotKey != wantKey {
			t.Fatalf("best(%q) over %q = %q, %v; brute force says %q, %v", name, keys, gotKey, ok, wantKey, wantOK)
		}
	})
}

// randomKeys returns distinct valid keys over {a, b, /, é, *, ?}.
func randomKeys(rng *rand.Rand, n int) []string {
	alphabet := []string{"a", "b", "/", "é", "*", "?"}
	seen := make(map[string]bool)
	var keys []string
	for len(keys) < n {
		var sb strings.Builder
		for range 1 + rng.IntN(6) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		key := sb.String()
		if validateGroupName(key) == nil && !seen[key] {
			seen[key] = true
			keys = append(keys, key)
		}
	}
	return keys
}

// randomName returns a concrete name over {a, b, /, é}.
func randomName(rng *rand.Rand) string {
	alphabet := []string{"a", "b", "/", "é"}
	var sb strings.Builder
	for range 1 + rng.IntN(8) {
		sb.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return sb.String()
}

// The reference: the rules of DESIGN.md read literally, over runes, by
// plain recursion and with no shortcuts.

type refStep struct {
	kind   stepKind
	length int // in runes
}

func refMatch(key, name string) bool {
	_, ok := refAlign([]rune(key), []rune(name))
	return ok
}

// refAlign returns the first alignment of key with name: a literal takes one
// equal character; "?C" takes the characters up to the first C, at least
// one; "*" takes the fewest characters, at least one, that let the rest of
// the key align.
func refAlign(key, name []rune) ([]refStep, bool) {
	if len(key) == 0 {
		return nil, len(name) == 0
	}
	prepend := func(s refStep, rest []refStep) []refStep {
		return append([]refStep{s}, rest...)
	}
	switch key[0] {
	case '?':
		if len(key) < 2 {
			return nil, false
		}
		n := 0
		for n < len(name) && name[n] != key[1] {
			n++
		}
		if n == 0 || n == len(name) {
			return nil, false
		}
		rest, ok := refAlign(key[1:], name[n:])
		return prepend(refStep{stepQuestion, n}, rest), ok
	case '*':
		for n := 1; n <= len(name); n++ {
			if rest, ok := refAlign(key[1:], name[n:]); ok {
				return prepend(refStep{stepStar, n}, rest), true
			}
		}
		return nil, false
	default:
		if len(name) == 0 || name[0] != key[0] {
			return nil, false
		}
		rest, ok := refAlign(key[1:], name[1:])
		return prepend(refStep{stepLiteral, 1}, rest), ok
	}
}

// refCompare orders two keys matching name: negative if a is more specific.
func refCompare(a, b, name string) int {
	sa, okA := refAlign([]rune(a), []rune(name))
	sb, okB := refAlign([]rune(b), []rune(name))
	if !okA || !okB {
		panic(fmt.Sprintf("refCompare(%q, %q, %q): both keys must match", a, b, name))
	}
	for i := 0; i < len(sa) && i < len(sb); i++ {
		if sa[i].kind != sb[i].kind {
			return int(sa[i].kind) - int(sb[i].kind)
		}
		if sa[i].length != sb[i].length {
			return sa[i].length - sb[i].length
		}
	}
	return len(sa) - len(sb)
}
