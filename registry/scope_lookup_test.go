package registry

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLookupScopeNeverCreatesAScope(t *testing.T) {
	n, err := New(Config{Name: "n1"})
	require.NoError(t, err)
	defer n.Close()

	_, ok := n.LookupScope("invented")
	require.False(t, ok, "an unknown scope is not found")
	_, ok = n.LookupScope("invented")
	require.False(t, ok, "and looking it up did not create it")
	require.Equal(t, 0, n.ScopeCount())
	require.Equal(t, []string{DefaultScope}, n.Scopes())

	s, ok := n.LookupScope(DefaultScope)
	require.True(t, ok, "the default scope always exists")
	require.Equal(t, DefaultScope, s.Name())

	a, err := n.Scope("alpha")
	require.NoError(t, err)
	require.NoError(t, a.Join("/g", "m", nil))
	found, ok := n.LookupScope("alpha")
	require.True(t, ok)
	g, err := found.Members("/g")
	require.NoError(t, err)
	require.Len(t, g.Members, 1)
}

func TestLookupScopeFindsAScopeOnlyAnotherNodeWroteTo(t *testing.T) {
	p := newPair(t, nil)
	remote, err := p.a.Scope("alpha")
	require.NoError(t, err)
	require.NoError(t, remote.Join("/g", "m", nil))
	p.sync()
	s, ok := p.b.LookupScope("alpha")
	require.True(t, ok, "a replicated change makes the scope known")
	g, err := s.Members("/g")
	require.NoError(t, err)
	require.Len(t, g.Members, 1)
}

func TestMaxScopesRefusesOnlyNewScopes(t *testing.T) {
	n, err := New(Config{Name: "n1", MaxScopes: 2})
	require.NoError(t, err)
	defer n.Close()
	_, err = n.Scope("a")
	require.NoError(t, err)
	_, err = n.Scope("b")
	require.NoError(t, err)
	_, err = n.Scope("c")
	require.ErrorIs(t, err, ErrTooManyScopes)
	_, ok := n.LookupScope("c")
	require.False(t, ok, "a refused scope is not created")
	_, err = n.Scope("a")
	require.NoError(t, err, "a known scope is still served")
	require.NoError(t, n.Default().Join("/g", "m", nil), "the default scope is never refused")
}

// BenchmarkJoinNewScope joins one member into a scope of its own, after
// `existing` scopes were created: creating a scope must cost the same with
// ten thousand others as with none (a map copied per new scope made it
// grow with their number).
func BenchmarkJoinNewScope(b *testing.B) {
	for _, existing := range []int{0, 10000} {
		b.Run(fmt.Sprintf("existing=%d", existing), func(b *testing.B) {
			n, err := New(Config{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			join := func(i int) {
				s, err := n.Scope(fmt.Sprintf("scope-%d", i))
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Join("/g", "m", nil); err != nil {
					b.Fatal(err)
				}
			}
			for i := range existing {
				join(i)
			}
			i := existing
			for b.Loop() {
				join(i)
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "joins/s")
		})
	}
}
