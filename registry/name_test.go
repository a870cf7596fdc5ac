package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateGroupName(t *testing.T) {
	valid := []string{
		"/svc/db/eu",
		"a",
		"*",
		"/svc/*",
		"*/db",
		"?/db",
		"/svc/?/db",
		"/a*b*c",
		"/a?b*c",
		"/*a?b",
		"/région/*/é",
		"/?é",
		strings.Repeat("x", MaxNameLen),
	}
	for _, name := range valid {
		if err := validateGroupName(name); err != nil {
			t.Errorf("validateGroupName(%q) = %v, want nil", name, err)
		}
	}

	invalid := []struct {
		name, reason string
	}{
		{"", "empty"},
		{strings.Repeat("x", MaxNameLen+1), "longer than 1024 bytes"},
		{"/a/\xff", "not valid UTF-8"},
		{"/a**", `"**" is not allowed`},
		{"**/a", `"**" is not allowed`},
		{"/a??b", `"??" is not allowed`},
		{"/a*?b", `"*?" is not allowed`},
		{"/a?*b", `"?*" is not allowed`},
		{"/a?", `"?" cannot end a pattern`},
		{"?", `"?" cannot end a pattern`},
		{"/a/*b?", `"?" cannot end a pattern`},
	}
	for _, tc := range invalid {
		err := validateGroupName(tc.name)
		if err == nil {
			t.Errorf("validateGroupName(%.40q) = nil, want an error", tc.name)
			continue
		}
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("validateGroupName(%.40q) = %v, does not wrap ErrInvalidName", tc.name, err)
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("validateGroupName(%.40q) = %q, want it to say %q", tc.name, err, tc.reason)
		}
	}
}

func TestValidateLookupName(t *testing.T) {
	if err := validateLookupName("/svc/db"); err != nil {
		t.Fatalf("validateLookupName(concrete) = %v", err)
	}
	for _, name := range []string{"/svc/*", "/svc/?/db", "*"} {
		err := validateLookupName(name)
		if !errors.Is(err, ErrPatternInLookup) || !errors.Is(err, ErrInvalidName) {
			t.Errorf("validateLookupName(%q) = %v, want ErrPatternInLookup and ErrInvalidName", name, err)
		}
	}
	// A malformed name is reported as malformed, not as a pattern.
	for _, name := range []string{"", "/a**", "/a?"} {
		err := validateLookupName(name)
		if !errors.Is(err, ErrInvalidName) || errors.Is(err, ErrPatternInLookup) {
			t.Errorf("validateLookupName(%q) = %v, want ErrInvalidName alone", name, err)
		}
	}
}

func TestLiteralPrefix(t *testing.T) {
	for _, tc := range []struct{ key, prefix string }{
		{"/svc/db", "/svc/db"},
		{"/svc/*", "/svc/"},
		{"*/db", ""},
		{"?/db", ""},
		{"/a?b*c/d", "/a"},
	} {
		if got := literalPrefix(tc.key); got != tc.prefix {
			t.Errorf("literalPrefix(%q) = %q, want %q", tc.key, got, tc.prefix)
		}
	}
}

func TestIsPattern(t *testing.T) {
	for name, want := range map[string]bool{"/a/b": false, "/a/*": true, "?/b": true, "": false} {
		if got := isPattern(name); got != want {
			t.Errorf("isPattern(%q) = %v, want %v", name, got, want)
		}
	}
}
