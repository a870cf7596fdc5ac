package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const hostileToken = "s3cret-token"

// hostileRequest is one request of the hostile-input table, and what the
// API must answer: a status and a JSON error saying why.
type hostileRequest struct {
	name         string
	method, path string
	body         string
	// header replaces the defaults (JSON content type, the token); a value
	// of "" removes the header.
	header map[string]string
	// host, when set, is sent as the Host header.
	host string

	status  int
	errHas  string
	allowed string // the Allow header a 405 must carry
}

func TestHostileInputIsRefusedAndChangesNothing(t *testing.T) {
	base := startAgent(t, "--token", hostileToken, "--max-scopes", "2")
	port := base[strings.LastIndex(base, ":")+1:]
	do := func(c hostileRequest) (*http.Response, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+hostileToken)
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range c.header {
			if v == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, v)
			}
		}
		if c.host != "" {
			req.Host = c.host
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		require.NoError(t, err, c.name)
		defer resp.Body.Close()
		var out map[string]any
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, &out), "%s: the answer is not JSON: %q", c.name, raw)
		return resp, out
	}

	// A member to leave and update, so refusals are not trivially empty.
	resp, out := do(hostileRequest{method: "POST", path: "/v1/scopes/default/join", body: `{"group":"/svc/db","member":"db-1","meta":{"zone":"eu"}}`})
	require.Equal(t, 200, resp.StatusCode, out)
	resp, out = do(hostileRequest{method: "POST", path: "/v1/scopes/second/join", body: `{"group":"/svc/db","member":"db-2"}`})
	require.Equal(t, 200, resp.StatusCode, out, "the second scope is within --max-scopes 2")
	digest := func() map[string]any {
		_, out := do(hostileRequest{method: "GET", path: "/v1/scopes/default/digest"})
		return out
	}
	before := digest()

	join := "/v1/scopes/default/join"
	long := strings.Repeat("x", 1025)
	cases := []hostileRequest{
		// Malformed and strict JSON.
		{name: "malformed JSON", method: "POST", path: join, body: `{"group":`, status: 400, errHas: "end of the JSON body"},
		{name: "bad JSON token", method: "POST", path: join, body: `{"group" "/a"}`, status: 400, errHas: "malformed JSON"},
		{name: "not JSON at all", method: "POST", path: join, body: `not json`, status: 400, errHas: "malformed JSON"},
		{name: "unknown field", method: "POST", path: join, body: `{"group":"/a","member":"m","color":"red"}`, status: 400, errHas: `unknown field "color"`},
		{name: "case-changed key", method: "POST", path: join, body: `{"Group":"/a","member":"m"}`, status: 400, errHas: `case-sensitive`},
		{name: "duplicate key", method: "POST", path: join, body: `{"group":"/a","group":"/b","member":"m"}`, status: 400, errHas: `duplicate key "group"`},
		{name: "duplicate metadata key", method: "POST", path: join, body: `{"group":"/a","member":"m","meta":{"k":"1","k":"2"}}`, status: 400, errHas: `duplicate key "k"`},
		{name: "trailing data", method: "POST", path: join, body: `{"group":"/a","member":"m"} {}`, status: 400, errHas: "data after"},
		{name: "array body", method: "POST", path: join, body: `[{"group":"/a","member":"m"}]`, status: 400, errHas: "not an array"},
		{name: "string body", method: "POST", path: join, body: `"hello"`, status: 400, errHas: "not a string"},
		{name: "null body", method: "POST", path: join, body: `null`, status: 400, errHas: "not null"},
		{name: "empty body", method: "POST", path: join, status: 400, errHas: "empty body"},
		{name: "metadata of numbers", method: "POST", path: join, body: `{"group":"/a","member":"m","meta":{"k":1}}`, status: 400, errHas: `field "meta": a JSON number where a string`},
		{name: "member of the wrong type", method: "POST", path: join, body: `{"group":"/a","member":7}`, status: 400, errHas: `field "member"`},
		// Names and patterns.
		{name: "malformed pattern", method: "POST", path: join, body: `{"group":"/a/**","member":"m"}`, status: 400, errHas: `"**" is not allowed`},
		{name: "pattern ending in ?", method: "POST", path: join, body: `{"group":"/a?","member":"m"}`, status: 400, errHas: "cannot end a pattern"},
		{name: "group over the limit", method: "POST", path: join, body: `{"group":"/` + long + `","member":"m"}`, status: 400, errHas: "longer than 1024 bytes"},
		{name: "member over the limit", method: "POST", path: join, body: `{"group":"/a","member":"` + long + `"}`, status: 400, errHas: "more than 1024"},
		{name: "empty member", method: "POST", path: join, body: `{"group":"/a","member":""}`, status: 400, errHas: "empty member"},
		{name: "NUL in a member", method: "POST", path: join, body: `{"group":"/a","member":"m\u0000"}`, status: 400, errHas: "control character U+0000"},
		{name: "escape in a group", method: "POST", path: join, body: `{"group":"/a\u001b[31m","member":"m"}`, status: 400, errHas: "control character U+001B"},
		{name: "C1 control in a member", method: "POST", path: join, body: `{"group":"/a","member":"m\u0085"}`, status: 400, errHas: "control character U+0085"},
		{name: "bidi override in a group", method: "POST", path: join, body: `{"group":"/a\u202e","member":"m"}`, status: 400, errHas: "bidi control U+202E"},
		{name: "bidi isolate in metadata", method: "POST", path: join, body: `{"group":"/a","member":"m","meta":{"k":"\u2066v"}}`, status: 400, errHas: "bidi control U+2066"},
		{name: "DEL in a metadata key", method: "POST", path: join, body: `{"group":"/a","member":"m","meta":{"k\u007f":"v"}}`, status: 400, errHas: "control character U+007F"},
		{name: "invalid UTF-8 in a member", method: "POST", path: join, body: "{\"group\":\"/a\",\"member\":\"m\xff\"}", status: 400, errHas: "not valid UTF-8"},
		{name: "control character in a scope", method: "POST", path: "/v1/scopes/a%01b/join", body: `{"group":"/a","member":"m"}`, status: 400, errHas: "control character U+0001"},
		{name: "wildcard in a lookup", method: "GET", path: "/v1/scopes/default/members?name=/svc/*", status: 400, errHas: "not a pattern"},
		// Changes to what is not there.
		{name: "leave of a non-member", method: "POST", path: "/v1/scopes/default/leave", body: `{"group":"/svc/db","member":"nobody"}`, status: 404, errHas: "not a member"},
		{name: "leave with metadata", method: "POST", path: "/v1/scopes/default/leave", body: `{"group":"/svc/db","member":"db-1","meta":{}}`, status: 400, errHas: "takes no meta"},
		{name: "meta of a non-member", method: "POST", path: "/v1/scopes/default/meta", body: `{"group":"/svc/db","member":"nobody","meta":{}}`, status: 404, errHas: "not a member"},
		{name: "meta without meta", method: "POST", path: "/v1/scopes/default/meta", body: `{"group":"/svc/db","member":"db-1"}`, status: 400, errHas: `needs "meta"`},
		{name: "leave in an unknown scope", method: "POST", path: "/v1/scopes/invented/leave", body: `{"group":"/svc/db","member":"db-1"}`, status: 404, errHas: `no such scope "invented"`},
		{name: "join past --max-scopes", method: "POST", path: "/v1/scopes/third/join", body: `{"group":"/a","member":"m"}`, status: 413, errHas: "too many scopes"},
		{name: "join with an unknown lease", method: "POST", path: join, body: `{"group":"/a","member":"m","lease":"nope"}`, status: 404, errHas: "no such lease"},
		{name: "lease TTL that is not a duration", method: "POST", path: "/v1/leases", body: `{"ttl":"forever"}`, status: 400, errHas: `ttl "forever"`},
		{name: "lease TTL out of range", method: "POST", path: "/v1/leases", body: `{"ttl":"100h"}`, status: 400, errHas: "ttl"},
		{name: "lease with an unknown field", method: "POST", path: "/v1/leases", body: `{"ttl":"10s","TTL":"1s"}`, status: 400, errHas: "case-sensitive"},
		{name: "keepalive of an unknown lease", method: "POST", path: "/v1/leases/nope/keepalive", status: 404, errHas: "no such lease"},
		{name: "revoke of an unknown lease", method: "DELETE", path: "/v1/leases/nope", status: 404, errHas: "no such lease"},
		// Reads never create state.
		{name: "members of an unknown scope", method: "GET", path: "/v1/scopes/invented/members?name=/a", status: 404, errHas: `no such scope "invented"`},
		{name: "groups of an unknown scope", method: "GET", path: "/v1/scopes/invented/groups", status: 404, errHas: "no such scope"},
		{name: "pick in an unknown scope", method: "GET", path: "/v1/scopes/invented/pick?name=/a&strategy=random", status: 404, errHas: "no such scope"},
		{name: "digest of an unknown scope", method: "GET", path: "/v1/scopes/invented/digest", status: 404, errHas: "no such scope"},
		{name: "watch of an unknown scope", method: "GET", path: "/v1/scopes/invented/watch?pattern=/a", status: 404, errHas: "no such scope"},
		{name: "unknown group", method: "GET", path: "/v1/scopes/default/members?name=/nothing", status: 404, errHas: "no such group"},
		// Query strings.
		{name: "unknown query parameter", method: "GET", path: "/v1/scopes/default/members?name=/svc/db&color=red", status: 400, errHas: `unknown query parameter "color"`},
		{name: "repeated parameter", method: "GET", path: "/v1/scopes/default/members?name=/svc/db&name=/svc/web", status: 400, errHas: `"name" given more than once`},
		{name: "malformed escape", method: "GET", path: "/v1/scopes/default/members?name=%zz", status: 400, errHas: `query parameter "name": malformed value`},
		{name: "malformed escape in a name", method: "GET", path: "/v1/scopes/default/groups?%zz=1", status: 400, errHas: `query parameter "%zz": malformed name`},
		{name: "semicolon separator", method: "GET", path: "/v1/scopes/default/members?name=/svc/db;where=local", status: 400, errHas: `';' does not separate`},
		{name: "parameter on a call that takes none", method: "GET", path: "/v1/scopes?all=1", status: 400, errHas: "takes none"},
		{name: "parameter on the digest", method: "GET", path: "/v1/scopes/default/digest?scope=x", status: 400, errHas: `unknown query parameter "scope"`},
		{name: "parameter on the nodes", method: "GET", path: "/v1/nodes?status=alive", status: 400, errHas: `unknown query parameter "status"`},
		{name: "parameter on the overlay", method: "GET", path: "/v1/overlay?x", status: 400, errHas: `unknown query parameter "x"`},
		{name: "bad where", method: "GET", path: "/v1/scopes/default/members?name=/svc/db&where=nearby", status: 400, errHas: "want local or remote"},
		{name: "bad strategy", method: "GET", path: "/v1/scopes/default/pick?name=/svc/db&strategy=nearest", status: 400, errHas: "nearest"},
		{name: "page of 0", method: "GET", path: "/v1/scopes/default/members?name=/svc/db&limit=0", status: 400, errHas: `"limit"`},
		{name: "page too big", method: "GET", path: "/v1/scopes/default/members?name=/svc/db&limit=10001", status: 400, errHas: `"limit"`},
		{name: "page not a number", method: "GET", path: "/v1/scopes/default/members?name=/svc/db&limit=ten", status: 400, errHas: `"limit"`},
		{name: "forged cursor", method: "GET", path: "/v1/scopes/default/members?name=/svc/db&after=!!!", status: 400, errHas: `"after"`},
		// Paths and methods.
		{name: "unknown path", method: "GET", path: "/v2/everything", status: 404, errHas: "no such path"},
		{name: "wrong method", method: "DELETE", path: "/v1/scopes/default/join", status: 405, errHas: "not allowed", allowed: "POST"},
		{name: "GET of a POST call", method: "GET", path: "/v1/scopes/default/join", status: 405, errHas: "not allowed", allowed: "POST"},
		{name: "double slash", method: "GET", path: "//v1/scopes", status: 404, errHas: "canonical"},
		{name: "dot segment", method: "GET", path: "/v1/./scopes", status: 404, errHas: "canonical"},
		{name: "trailing slash", method: "GET", path: "/v1/scopes/", status: 404, errHas: "no such path"},
		// Token.
		{name: "no token", method: "GET", path: "/v1/scopes", header: map[string]string{"Authorization": ""}, status: 401, errHas: "bearer token"},
		{name: "wrong token", method: "GET", path: "/v1/scopes", header: map[string]string{"Authorization": "Bearer guess"}, status: 401, errHas: "bearer token"},
		{name: "token as a prefix", method: "POST", path: join, body: `{"group":"/a","member":"m"}`, header: map[string]string{"Authorization": "Bearer " + hostileToken + "x"}, status: 401, errHas: "bearer token"},
		{name: "basic auth", method: "GET", path: "/v1/scopes", header: map[string]string{"Authorization": "Basic " + hostileToken}, status: 401, errHas: "bearer token"},
		{name: "metrics without the token", method: "GET", path: "/metrics", header: map[string]string{"Authorization": ""}, status: 401, errHas: "bearer token"},
		// Browsers and DNS rebinding.
		{name: "cross-origin text/plain POST", method: "POST", path: join, body: `{"group":"/a","member":"m"}`, header: map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain", "Authorization": ""}, status: 403, errHas: "cross-origin"},
		{name: "cross-origin POST with the token", method: "POST", path: join, body: `{"group":"/a","member":"m"}`, header: map[string]string{"Origin": "http://localhost:1"}, status: 403, errHas: "cross-origin"},
		{name: "null origin", method: "POST", path: join, body: `{"group":"/a","member":"m"}`, header: map[string]string{"Origin": "null"}, status: 403, errHas: "cross-origin"},
		{name: "cross-site fetch", method: "GET", path: "/v1/scopes", header: map[string]string{"Sec-Fetch-Site": "cross-site"}, status: 403, errHas: "Sec-Fetch-Site"},
		{name: "rebound host name", method: "GET", path: "/v1/scopes", host: "evil.example:" + port, status: 403, errHas: "evil.example"},
		{name: "localhost on another port", method: "GET", path: "/v1/scopes", host: "localhost:1", status: 403, errHas: "localhost:1"},
		{name: "text/plain body", method: "POST", path: join, body: `{"group":"/a","member":"m"}`, header: map[string]string{"Content-Type": "text/plain"}, status: 415, errHas: "application/json"},
		{name: "form body", method: "POST", path: join, body: `group=/a&member=m`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 415, errHas: "application/json"},
		{name: "body without a type", method: "POST", path: join, body: `{"group":"/a","member":"m"}`, header: map[string]string{"Content-Type": ""}, status: 415, errHas: "Content-Type"},
		{name: "JSON that is not UTF-8", method: "POST", path: join, body: `{"group":"/a","member":"m"}`, header: map[string]string{"Content-Type": "application/json; charset=latin1"}, status: 415, errHas: "UTF-8"},
		{name: "body over --max-body", method: "POST", path: join, body: `{"group":"/a","member":"m","meta":{"k":"` + strings.Repeat("v", 70<<10) + `"}}`, status: 413, errHas: "larger than 65536"},
	}
	for _, c := range cases {
		resp, out := do(c)
		require.Equal(t, c.status, resp.StatusCode, "%s: %v", c.name, out)
		msg, _ := out["error"].(string)
		require.Contains(t, msg, c.errHas, c.name)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), c.name)
		if c.status == 401 {
			require.Equal(t, `Bearer realm="cpgd"`, resp.Header.Get("WWW-Authenticate"), c.name)
		}
		if c.allowed != "" {
			require.Contains(t, resp.Header.Get("Allow"), c.allowed, c.name)
		}
	}

	require.Equal(t, before, digest(), "refused requests changed the registry")
	_, out = do(hostileRequest{method: "GET", path: "/v1/scopes"})
	require.Equal(t, []any{"default", "second"}, out["scopes"], "no refused request created a scope")

	// What a browser page of the same origin, and tools, may still do.
	for _, c := range []hostileRequest{
		{name: "same-origin POST", method: "POST", path: "/v1/scopes/default/meta", body: `{"group":"/svc/db","member":"db-1","meta":{"zone":"eu"}}`, header: map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}},
		{name: "localhost", method: "GET", path: "/v1/scopes", host: "localhost:" + port},
		{name: "no token on /livez", method: "GET", path: "/livez", header: map[string]string{"Authorization": ""}},
		{name: "no token on /readyz", method: "GET", path: "/readyz", header: map[string]string{"Authorization": ""}},
		{name: "JSON with a charset", method: "GET", path: "/v1/scopes/default/groups", header: map[string]string{"Content-Type": "application/json; charset=utf-8"}},
	} {
		resp, out := do(c)
		require.Equal(t, 200, resp.StatusCode, "%s: %v", c.name, out)
	}

}

// TestHugeBodiesCostNoMemory sends 10 MB bodies, with a length and
// without one (chunked): each is refused with 413 or cut off, and the
// agent's heap does not grow by their size.
func TestHugeBodiesCostNoMemory(t *testing.T) {
	base := startAgent(t)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, chunked := range []bool{false, true} {
		req, err := http.NewRequest("POST", base+"/v1/scopes/default/join", &zeroReader{left: 10 << 20})
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if !chunked {
			req.ContentLength = 10 << 20
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			// Cut off while sending: refused without being read.
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 413, resp.StatusCode, "chunked %v: %s", chunked, body)
		require.Contains(t, string(body), "larger than 65536")
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap before %d KiB, after %d KiB", before.HeapAlloc>>10, after.HeapAlloc>>10)
	require.Less(t, grown, int64(2<<20), "two 10 MB bodies grew the heap by %d bytes", grown)
	code, out := call(t, "GET", base+"/v1/scopes/default/digest", "")
	require.Equal(t, 200, code)
	require.Equal(t, float64(0), out["members"])
}

// zeroReader yields left bytes of a JSON-looking body without holding them.
type zeroReader struct{ left int }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), z.left)
	for i := range n {
		p[i] = ' '
	}
	z.left -= n
	return n, nil
}

// TestSlowClientIsCutOff trickles a request's headers past the header
// timeout: the agent closes the connection instead of waiting for ever.
func TestSlowClientIsCutOff(t *testing.T) {
	base := startAgent(t, "--read-header-timeout", "300ms")
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = io.WriteString(conn, "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n")
	require.NoError(t, err)
	closed := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(bufio.NewReader(conn))
		closed <- err
	}()
	// One header byte every 100 ms: the client is alive, but never done.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			require.Less(t, time.Since(start), 2*time.Second, "the trickling client was cut off late")
			return
		case <-tick.C:
			if time.Since(start) > 5*time.Second {
				t.Fatal("a client trickling its headers held its connection for 5 s")
			}
			_, _ = io.WriteString(conn, "X")
		}
	}
}

// TestShutdownWithAHalfSentRequest stops the agent while a client has
// sent half a request: the agent exits cleanly, without an error, within
// a couple of seconds (it used to wait 5 s and fail).
func TestShutdownWithAHalfSentRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"agent", "--name", "t1", "--http", "127.0.0.1:0", "--data-dir", t.TempDir()}, ready)
	}()
	addr := <-ready
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	body := `{"group":"/a","member":"m"}`
	_, err = fmt.Fprintf(conn, "POST /v1/scopes/default/join HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body)+10, body)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // the request is in the handler, reading its body
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a half-sent request made the shutdown fail")
		require.Less(t, time.Since(start), 2500*time.Millisecond)
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not stop")
	}
}

// TestWarnsWhenOpenWithoutAToken: an API reachable from other hosts and
// without a token is logged as a warning at start; on loopback, or with a
// token, it is not.
func TestWarnsWhenOpenWithoutAToken(t *testing.T) {
	for _, c := range []struct {
		args []string
		warn bool
	}{
		{[]string{"--http", "0.0.0.0:0"}, true},
		{[]string{"--http", "0.0.0.0:0", "--token", "t"}, false},
		{[]string{"--http", "127.0.0.1:0"}, false},
	} {
		var log syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		args := append([]string{"--name", "t1", "--data-dir", t.TempDir()}, c.args...)
		go func() { done <- runAgent(ctx, args, io.Discard, &log, ready) }()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("%v: %v", c.args, err)
		}
		cancel()
		require.NoError(t, <-done)
		warned := strings.Contains(log.String(), "level=WARN") && strings.Contains(log.String(), "without a token")
		require.Equal(t, c.warn, warned, "%v: %s", c.args, log.String())
	}
}
