package main

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeStrictAcceptsWhatEncodingJSONWrites(t *testing.T) {
	want := joinRequest{Group: "/svc/db", Member: "db-1", Meta: map[string]string{"zone": "eu", "nested": `{"a":1}`}, Lease: "l1"}
	body, err := json.Marshal(want)
	require.NoError(t, err)
	var got joinRequest
	status, err := decodeStrict(strings.NewReader(" \n"+string(body)+"\n "), &got)
	require.NoError(t, err, "status %d", status)
	require.Equal(t, want, got)
}

// FuzzDecodeStrict: whatever the body, decodeStrict never panics, and
// what it accepts is an object encoding/json reads the same way.
func FuzzDecodeStrict(f *testing.F) {
	for _, seed := range []string{
		`{"group":"/a","member":"m"}`, `{"group":"/a","member":"m","meta":{"k":"v"}}`,
		`{"group":"/a","group":"/b"}`, `{"Group":"/a"}`, `{"meta":{"k":"1","k":"2"}}`,
		`{"group":"/a"} {}`, `[]`, `null`, `"x"`, ``, `{`, `{"meta":[{"a":1,"a":2}]}`,
		"{\"member\":\"\xff\"}", `{"member":7}`, `{"meta":{"k":1}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var got joinRequest
		status, err := decodeStrict(strings.NewReader(body), &got)
		if err != nil {
			if status != 400 {
				t.Fatalf("status %d for a refused body", status)
			}
			return
		}
		var loose joinRequest
		if err := json.Unmarshal([]byte(body), &loose); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		require.Equal(t, loose, got)
	})
}

// FuzzParseQuery: whatever the query string, parsing never panics, and
// what it accepts is what net/url reads, restricted to known parameters.
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{"name=/a&where=local", "name=%zz", "a;b=c", "name=1&name=2", "exclude=a&exclude=b", "", "&&", "name"} {
		f.Add(seed)
	}
	allowed := queryParams{"name": false, "exclude": true}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseQuery(raw, allowed)
		if fast, slow := wellFormedQuery(raw), checkPieces(raw); fast != (slow == nil) {
			t.Fatalf("%q: the quick check says well-formed=%v, the piece by piece one %v", raw, fast, slow)
		}
		if checkErr := checkQuery(raw); checkErr != nil && err == nil {
			t.Fatalf("checkQuery refuses %q (%v) but parseQuery accepts it", raw, checkErr)
		}
		if err != nil {
			return
		}
		want, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("accepted %q, which net/url refuses: %v", raw, err)
		}
		for k := range want {
			if _, ok := allowed[k]; !ok {
				t.Fatalf("accepted unknown parameter %q", k)
			}
		}
		require.Equal(t, len(want), len(got))
		for k, v := range want {
			require.Equal(t, v, got[k])
		}
	})
}

// FuzzCursor: any string decodes or is refused without panicking, and a
// cursor the API made decodes to the position it was made from.
func FuzzCursor(f *testing.F) {
	f.Add("m1", "node-a", "")
	f.Add("", "", "!!!")
	f.Add("a\x00b", "n", "AQ")
	f.Fuzz(func(t *testing.T, id, node, raw string) {
		_, _ = decodeCursor(raw)
		pos, err := decodeCursor(encodeCursor(memberPos{id, node}))
		if id == "" && node == "" {
			return
		}
		require.NoError(t, err)
		require.Equal(t, memberPos{id, node}, pos)
	})
}

// The plain bodies clients send take the one-pass path; a body that
// needs the general one (escapes, null, other keys) is still read by it.
func TestDecodeQuickReadsThePlainForms(t *testing.T) {
	for body, want := range map[string]joinRequest{
		`{"group":"/svc/1","member":"m-1"}`:                                {Group: "/svc/1", Member: "m-1"},
		" {\n\t\"member\" : \"m\", \"group\":\"/g\" ,\"lease\":\"l\"}\r\n": {Group: "/g", Member: "m", Lease: "l"},
		`{"group":"/g","member":"m","meta":{}}`:                            {Group: "/g", Member: "m", Meta: map[string]string{}},
		`{"group":"/g","member":"m","meta":{"a":"1","b":""}}`:              {Group: "/g", Member: "m", Meta: map[string]string{"a": "1", "b": ""}},
		`{}`: {},
	} {
		var got joinRequest
		require.True(t, got.decodeQuick([]byte(body)), "%s", body)
		require.Equal(t, want, got, "%s", body)
	}
	for _, body := range []string{
		`{"group":"/g\u0041","member":"m"}`, `{"group":"/g","member":"m","meta":null}`,
		`{"group":"/g","group":"/g"}`, `{"Group":"/g"}`, `{"group":"/g"} {}`, `{"group":"é"}`,
		`{"meta":{"a":"1","a":"2"}}`, `{"group":1}`, `{"group":"/g",}`,
	} {
		got := joinRequest{Member: "untouched"}
		require.False(t, got.decodeQuick([]byte(body)), "%s", body)
		require.Equal(t, joinRequest{Member: "untouched"}, got, "a declined body changed the request: %s", body)
	}
}

// FuzzDecodeQuick: the one-pass reader accepts only what the general one
// accepts, reads it the same way, and leaves the request untouched when it
// declines.
func FuzzDecodeQuick(f *testing.F) {
	for _, seed := range []string{
		`{"group":"/a","member":"m"}`, `{"group":"/a","member":"m","meta":{"k":"v"}}`, `{"meta":{}}`,
		`{"group":"/a","group":"/b"}`, `{"Group":"/a"}`, `{"meta":{"k":"1","k":"2"}}`, ` {"lease" :"x"} `,
		`{"group":"/a"} {}`, `[]`, `null`, ``, `{`, `{"meta":null}`, "{\"member\":\"\xff\"}", `{"member":"a\"b"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		quick := joinRequest{Lease: "untouched"}
		if !quick.decodeQuick([]byte(body)) {
			require.Equal(t, joinRequest{Lease: "untouched"}, quick)
			return
		}
		var general joinRequest
		status, err := decodeGeneral([]byte(body), &general)
		if err != nil {
			t.Fatalf("quick path accepts %q, the general one refuses it (%d): %v", body, status, err)
		}
		require.Equal(t, general, quick)
	})
}

// What reading a join's body costs, in one pass and the general way:
// go test -run '^$' -bench DecodeJoin -benchmem ./cmd/cpgd/
func BenchmarkDecodeJoin(b *testing.B) {
	body := []byte(`{"group":"/bench/17","member":"m-17-123456","meta":{"zone":"eu-west-1"}}`)
	b.Run("one-pass", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var req joinRequest
			if _, err := decodeStrict(bytes.NewReader(body), &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var req joinRequest
			if _, err := decodeGeneral(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
