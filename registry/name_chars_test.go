package registry

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// forbiddenInNames are characters no scope, group, member, metadata key or
// metadata value may hold, with the reason the error must give.
var forbiddenInNames = []struct{ text, reason string }{
	{"a\x00b", "control character U+0000"},
	{"a\x01b", "control character U+0001"},
	{"a\nb", "control character U+000A"},
	{"a\x1bb", "control character U+001B"},
	{"a\x7fb", "control character U+007F"},
	{"a\u0085b", "control character U+0085"},
	{"a\u009fb", "control character U+009F"},
	{"a\u202ab", "bidi control U+202A"},
	{"a\u202eb", "bidi control U+202E"},
	{"a\u2066b", "bidi control U+2066"},
	{"a\u2069b", "bidi control U+2069"},
	{"a\xffb", "not valid UTF-8"},
	{"a\xc3", "not valid UTF-8"},
}

func TestNamesRefuseControlAndBidiCharacters(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	before := n.Summary()
	for _, c := range forbiddenInNames {
		check := func(what string, err, want error) {
			t.Helper()
			require.ErrorIs(t, err, want, "%s %q", what, c.text)
			require.True(t, strings.Contains(err.Error(), c.reason), "%s %q: %v, want it to say %q", what, c.text, err, c.reason)
		}
		check("group", s.Join("/"+c.text, "m", nil), ErrInvalidName)
		check("member", s.Join("/g", c.text, nil), ErrInvalidMember)
		check("metadata key", s.Join("/g", "m", Meta{c.text: "v"}), ErrInvalidMember)
		check("metadata value", s.Join("/g", "m", Meta{"k": c.text}), ErrInvalidMember)
		check("ValidateChange", ValidateChange("/g", c.text, nil), ErrInvalidMember)
		_, err := n.Scope(c.text)
		check("scope", err, ErrInvalidScope)
	}
	require.Equal(t, before, n.Summary(), "refused joins change nothing")
	require.Empty(t, s.Groups())
	require.Equal(t, []string{DefaultScope}, n.Scopes())
	require.Equal(t, 1, n.ScopeCount(), "no scope but the default one was created")
}

func TestNamesAcceptPrintableUnicode(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	for _, text := range []string{"région", "日本", "a b", "emoji \U0001F600", "\u00a0nbsp", "\ufffd"} {
		s, err := n.Scope(text)
		require.NoError(t, err, "scope %q", text)
		require.NoError(t, s.Join("/"+text, text, Meta{text: text}), "%q", text)
	}
}

func TestSetMetaWithEmptyMetaClearsIt(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	require.NoError(t, s.Join("/g", "m", Meta{"zone": "eu"}))
	for _, empty := range []Meta{{}, nil} {
		require.NoError(t, s.SetMeta("/g", "m", Meta{"zone": "eu"}))
		require.NoError(t, s.SetMeta("/g", "m", empty))
		g, err := s.Members("/g")
		require.NoError(t, err)
		require.Empty(t, g.Members[0].Meta, "SetMeta(%#v) clears the metadata", empty)
	}
}

func TestNodeNamesRefuseControlAndBidiCharacters(t *testing.T) {
	for _, c := range forbiddenInNames {
		_, err := New(Config{Name: "node-" + c.text})
		require.Error(t, err, "node name %q", c.text)
		require.Contains(t, err.Error(), c.reason)
	}
}
