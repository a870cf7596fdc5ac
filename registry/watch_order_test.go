package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A reader that falls behind a small channel, catches up, waits, and
// falls behind again sees every change of its groups once, in the order
// they were applied, and none of the groups it does not watch.
func TestAWatchKeepsOrderWhileItsReaderFallsBehindAndCatchesUp(t *testing.T) {
	n, err := New(Config{Name: "n1", WatchBuffer: 4096})
	require.NoError(t, err)
	defer n.Close()
	s := n.Default()
	w, err := s.Watch("/g*", 2)
	require.NoError(t, err)
	defer w.Close()
	next := 0
	read := func(k int) {
		for range k {
			select {
			case ev := <-w.Events():
				require.Equal(t, fmt.Sprint(next), ev.Member.ID)
				next++
			case <-time.After(5 * time.Second):
				t.Fatalf("change %d never arrived", next)
			}
		}
	}
	joined := 0
	for round := range 50 {
		burst := 1 + round%7
		for range burst {
			group := "/g" + fmt.Sprint(joined%3)
			require.NoError(t, s.Join(group, fmt.Sprint(joined), nil))
			require.NoError(t, s.Join("/other", fmt.Sprint(joined), nil)) // matches no watch
			joined++
		}
		read(burst)
		if round%5 == 0 {
			time.Sleep(time.Millisecond) // let the watch's goroutine wait again
		}
	}
	require.Len(t, w.Events(), 0, "nothing twice")
	require.NoError(t, w.Err())
}
