package registry

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The table must agree with a plain map through any mix of stores,
// replacements and removals, across rebuilds and deleted markers.
func TestGroupMapAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var m groupMap
	want := map[string]*groupView{}
	for step := range 20000 {
		name := fmt.Sprint("/g/", r.IntN(500))
		switch r.IntN(3) {
		case 0, 1:
			v := &groupView{name: name}
			m.store(v)
			want[name] = v
		case 2:
			m.remove(name)
			delete(want, name)
		}
		if step%97 == 0 {
			for i := range 500 {
				name := fmt.Sprint("/g/", i)
				require.Same(t, want[name], m.load(name), "step %d name %s", step, name)
			}
		}
	}
	require.Equal(t, len(want), m.live)
	require.Nil(t, m.load("/never"))
	var empty groupMap
	require.Nil(t, empty.load("/x"))
	empty.remove("/x")
}
