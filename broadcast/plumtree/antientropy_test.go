package plumtree

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// setHandler is a grow-only set with a digest/delta exchange, the shape the
// registry's CRDT handler takes: "have:<ids>" opens; the answer is
// "give:<what the opener lacks>;have:<ids>"; the opener answers with
// "give:<what the answerer lacks>"; that ends it.
type setHandler struct {
	recordingHandler
}

func newSetHandler(name string) *setHandler {
	return &setHandler{*newRecordingHandler(name)}
}

func (h *setHandler) digest() string {
	ids := make([]string, 0, len(h.have))
	for id := range h.have {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return "have:" + strings.Join(ids, ",")
}

func (h *setHandler) ExchangeStart(string) []byte { return []byte(h.digest()) }

func (h *setHandler) ExchangeReceive(_ Exchange, data []byte) ([]byte, []Action) {
	var theirs map[string]bool
	opened := false
	for _, part := range strings.Split(string(data), ";") {
		switch {
		case strings.HasPrefix(part, "have:"):
			theirs = map[string]bool{}
			for _, id := range strings.Split(strings.TrimPrefix(part, "have:"), ",") {
				theirs[id] = true
			}
			opened = !strings.Contains(string(data), "give:")
		case strings.HasPrefix(part, "give:"):
			for _, kv := range strings.Split(strings.TrimPrefix(part, "give:"), ",") {
				if id, payload, ok := strings.Cut(kv, "="); ok {
					h.learn([]byte(id), []byte(payload))
				}
			}
		}
	}
	if theirs == nil {
		return nil, nil // a final delta: nothing to answer
	}
	var give []string
	for id, payload := range h.have {
		if !theirs[id] {
			give = append(give, id+"="+string(payload))
		}
	}
	slices.Sort(give)
	reply := "give:" + strings.Join(give, ",")
	if opened {
		return []byte(reply + ";" + h.digest()), nil
	}
	if len(give) == 0 {
		return nil, nil
	}
	return []byte(reply), nil
}

// A node that links up after broadcasts were made gets them all through the
// exchange on the new link, each delivered once, and gives back what only it
// had.
func TestExchangeOnNewLinkCatchesUp(t *testing.T) {
	nodes := map[string]*Protocol{}
	handlers := map[string]*setHandler{}
	for _, name := range []string{"a", "b", "c"} {
		p, err := NewProtocol(Config{Self: name})
		require.NoError(t, err)
		handlers[name] = newSetHandler(name)
		require.NoError(t, p.Register("t", handlers[name]))
		nodes[name] = p
	}
	pump := func() {
		for moved := true; moved; {
			moved = false
			for _, from := range []string{"a", "b", "c"} {
				for _, env := range nodes[from].Ready().Messages {
					moved = true
					require.NoError(t, nodes[env.To].Step(from, env.Msg))
				}
			}
		}
	}
	link := func(x, y string) {
		nodes[x].NeighborUp(y)
		nodes[y].NeighborUp(x)
		pump()
	}
	link("a", "b")
	for _, id := range []string{"m1", "m2", "m3"} {
		handlers["a"].have[id] = []byte("p" + id)
		require.NoError(t, nodes["a"].Broadcast("t", []byte(id), []byte("p"+id)))
		pump()
	}
	handlers["c"].have["c1"] = []byte("only at c")

	link("b", "c")
	require.Equal(t, map[string]int{"m1": 1, "m2": 1, "m3": 1}, handlers["c"].delivered)
	require.Equal(t, 1, handlers["b"].delivered["c1"])
	require.Equal(t, "only at c", string(handlers["b"].have["c1"]))
}
