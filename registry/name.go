package registry

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxNameLen bounds a group name, concrete or pattern, in bytes. Names travel
// in every operation and digest, so a bound keeps a single join from bloating
// the replicated state.
const MaxNameLen = 1024

// MaxWildcards bounds the wildcards in one pattern. Lookups cost grows with
// the wildcards of the stored keys (a key of forty stars looked up with a
// long repetitive name takes a millisecond), and a registry shared by many
// services must not let one of them slow every lookup down.
const MaxWildcards = 16

// ErrInvalidName is wrapped by every error that refuses a group name or
// pattern; test for it with errors.Is.
var ErrInvalidName = errors.New("registry: invalid group name")

// ErrPatternInLookup is wrapped when a lookup names a pattern: lookups take a
// concrete name and return the most specific stored group matching it. The
// same error also wraps ErrInvalidName.
var ErrPatternInLookup = errors.New("registry: lookups take a concrete name, not a pattern")

const (
	wildcardStar     = '*'
	wildcardQuestion = '?'
)

// isPattern reports whether name contains a wildcard.
func isPattern(name string) bool {
	// A byte loop: every applied change asks, and strings.IndexAny
	// builds a set per call. The wildcards are ASCII, which no byte of a
	// multi-byte UTF-8 sequence equals.
	for i := 0; i < len(name); i++ {
		if name[i] == '*' || name[i] == '?' {
			return true
		}
	}
	return false
}

// validateGroupName checks a name given to join: a concrete name or a
// well-formed pattern. The combinations CPG leaves undefined are refused here
// so that every stored key has exactly one meaning.
func validateGroupName(name string) error {
	if reason := nameProblem(name); reason != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, reason)
	}
	return nil
}

// validateLookupName checks a name given to a lookup: a concrete name.
func validateLookupName(name string) error {
	if err := validateGroupName(name); err != nil {
		return err
	}
	if isPattern(name) {
		return fmt.Errorf("%w: %w %q", ErrInvalidName, ErrPatternInLookup, name)
	}
	return nil
}

// nameProblem returns why name is not a valid group name or pattern, or ""
// if it is.
func nameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("longer than %d bytes", MaxNameLen)
	}
	if reason := textProblem(name); reason != "" {
		return reason
	}
	if n := strings.Count(name, "*") + strings.Count(name, "?"); n > MaxWildcards {
		return fmt.Sprintf("%d wildcards, more than %d", n, MaxWildcards)
	}
	for i := 0; i+1 < len(name); i++ {
		if isWildcard(name[i]) && isWildcard(name[i+1]) {
			return fmt.Sprintf("%q is not allowed: a wildcard must be followed by a literal character", name[i:i+2])
		}
	}
	if name[len(name)-1] == wildcardQuestion {
		return `"?" cannot end a pattern: it matches up to the next literal character`
	}
	return ""
}

// textProblem returns why s may not be a name in the registry (a scope,
// group or member name, or a metadata key or value), or "" if it may be.
// Names are shown in logs, terminals and web pages and compared byte for
// byte: control characters could forge log lines or hide text, and bidi
// overrides and isolates make two different names look alike.
func textProblem(s string) string {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && isInvalidAt(s, i):
			return fmt.Sprintf("not valid UTF-8 (at byte %d)", i)
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
			return fmt.Sprintf("control character U+%04X at byte %d", r, i)
		case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return fmt.Sprintf("bidi control U+%04X at byte %d", r, i)
		}
	}
	return ""
}

// isInvalidAt reports whether the rune at byte i of s is an encoding error
// rather than a real U+FFFD.
func isInvalidAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 1
}

func isWildcard(c byte) bool {
	return c == wildcardStar || c == wildcardQuestion
}

// literalPrefix returns the part of key before its first wildcard: the whole
// key if it is concrete, "" if it starts with a wildcard.
func literalPrefix(key string) string {
	if i := strings.IndexAny(key, "*?"); i >= 0 {
		return key[:i]
	}
	return key
}
