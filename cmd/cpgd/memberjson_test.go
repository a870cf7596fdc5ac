package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cpggo/cpg/registry"
)

// viaEncodingJSON is what the API wrote before the hand-written encoder:
// the reference the encoder must match byte for byte.
func viaEncodingJSON(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	require.NoError(t, json.NewEncoder(&buf).Encode(v))
	return buf.Bytes()
}

func membersBody(t testing.TB, group string, members []registry.Member, next string) []byte {
	w := httptest.NewRecorder()
	writeMembersJSON(w, group, members, next)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	return w.Body.Bytes()
}

func TestMembersJSONIsEncodingJSONs(t *testing.T) {
	joined := time.Date(2026, 11, 25, 15, 4, 5, 123456789, time.UTC).UnixNano()
	members := []registry.Member{
		{ID: "db-1", Node: "n1", Joined: joined, Count: 1},
		{ID: `q"uo\te<&>`, Node: "n\u00e9\u2028\u2029", Joined: joined + 1000, Count: 3,
			Meta: registry.Meta{"zone": "eu", "addr": "10.0.0.7:5432", "\x01ctl\n\t\b\f\r": "\x7f\xff"}},
		{ID: "round", Node: "n2", Joined: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano(), Meta: registry.Meta{}},
	}
	for _, c := range []struct {
		group string
		ms    []registry.Member
		next  string
	}{
		{"/svc/db", members, ""},
		{"/svc/*", members[:1], "cursor/1"},
		{"/empty", nil, ""},
	} {
		out := make([]memberJSON, len(c.ms))
		for i := range c.ms {
			out[i] = toJSON(&c.ms[i])
		}
		want := map[string]any{"group": c.group, "members": out}
		if c.next != "" {
			want["next"] = c.next
		}
		require.Equal(t, string(viaEncodingJSON(t, want)), string(membersBody(t, c.group, c.ms, c.next)))
	}

	w := httptest.NewRecorder()
	writeChangeJSON(w, `/svc/<db>`, "m\u2028", 3)
	require.Equal(t, string(viaEncodingJSON(t, map[string]any{"group": `/svc/<db>`, "member": "m\u2028", "count": 3})), w.Body.String())

	w = httptest.NewRecorder()
	writePickJSON(w, "/svc/db", &members[1])
	require.Equal(t, string(viaEncodingJSON(t, map[string]any{"group": "/svc/db", "member": toJSON(&members[1])})), w.Body.String())
}

// The encoder writes any member as encoding/json does, whatever bytes its
// names and metadata hold.
func FuzzMemberJSON(f *testing.F) {
	f.Add("db-1", "n1", "addr", "10.0.0.7", uint32(1), int64(1764083045123456789))
	f.Add("<\u2028>", "\xff\xfe", "\x00", "\"\\", uint32(7), int64(0))
	f.Fuzz(func(t *testing.T, id, node, key, value string, count uint32, joined int64) {
		m := registry.Member{ID: id, Node: node, Count: count, Joined: joined, Meta: registry.Meta{key: value, "k2": id}}
		want := viaEncodingJSON(t, map[string]any{"group": node, "members": []memberJSON{toJSON(&m)}})
		if got := membersBody(t, node, []registry.Member{m}, ""); !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		w := httptest.NewRecorder()
		writeChangeJSON(w, key, id, int(count))
		if want := viaEncodingJSON(t, map[string]any{"group": key, "member": id, "count": int(count)}); !bytes.Equal(w.Body.Bytes(), want) {
			t.Fatalf("change: got  %s\nwant %s", w.Body.Bytes(), want)
		}
	})
}

func BenchmarkMembersJSON(b *testing.B) {
	members := make([]registry.Member, 10)
	for i := range members {
		members[i] = registry.Member{ID: "m" + string(rune('0'+i)), Node: "node-1", Joined: time.Now().UnixNano(), Count: 1}
	}
	w := &discardWriter{header: make(map[string][]string)}
	b.ReportAllocs()
	for b.Loop() {
		writeMembersJSON(w, "/svc/1/x", members, "")
	}
}
