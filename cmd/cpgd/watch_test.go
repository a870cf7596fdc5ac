package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sseEvent is one server-sent event, or a comment (heartbeat).
type sseEvent struct {
	id, kind, data, comment string
}

type sseReader struct{ r *bufio.Reader }

// next reads up to the blank line that ends an event or a comment.
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return ev, nil
		case strings.HasPrefix(line, ": "):
			ev.comment = line[2:]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.kind = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		default:
			return ev, fmt.Errorf("not a line of an event stream: %q", line)
		}
	}
}

// nextEvent skips heartbeats.
func (s *sseReader) nextEvent(t *testing.T) sseEvent {
	t.Helper()
	for {
		ev, err := s.next()
		require.NoError(t, err)
		if ev.comment == "" {
			return ev
		}
	}
}

type eventData struct {
	Scope  string `json:"scope"`
	Group  string `json:"group"`
	Member struct {
		ID    string `json:"id"`
		Node  string `json:"node"`
		Count int    `json:"count"`
	} `json:"member"`
	Applied time.Time `json:"applied"`
	Error   string    `json:"error"`
}

func (ev sseEvent) decode(t *testing.T) eventData {
	t.Helper()
	var d eventData
	require.NoError(t, json.Unmarshal([]byte(ev.data), &d), ev.data)
	return d
}

// summary is "kind group member".
func (ev sseEvent) summary(t *testing.T) string {
	d := ev.decode(t)
	return ev.kind + " " + d.Group + " " + d.Member.ID
}

// openWatch opens a stream and reads its first heartbeat, so that every
// change made after it returns is on the stream.
func openWatch(t *testing.T, url string, header ...string) (*http.Response, *sseReader) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		return resp, nil
	}
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &sseReader{r: bufio.NewReader(resp.Body)}
	ev, err := s.next()
	require.NoError(t, err)
	require.Equal(t, "heartbeat", ev.comment, "a heartbeat right after the headers")
	return resp, s
}

func join(t *testing.T, base, group, member string) {
	t.Helper()
	code, out := call(t, "POST", base+"/v1/scopes/default/join", fmt.Sprintf(`{"group":%q,"member":%q}`, group, member))
	require.Equal(t, 200, code, out)
}

func leave(t *testing.T, base, group, member string) {
	t.Helper()
	code, out := call(t, "POST", base+"/v1/scopes/default/leave", fmt.Sprintf(`{"group":%q,"member":%q}`, group, member))
	require.Equal(t, 200, code, out)
}

func TestWatchEventsCarryIDsAndTheAgreedData(t *testing.T) {
	base := startAgent(t)
	_, s := openWatch(t, base+"/v1/scopes/default/watch?pattern=/svc/*")
	before := time.Now()
	join(t, base, "/svc/web", "w1")
	after := time.Now()
	join(t, base, "/other", "x")
	leave(t, base, "/svc/web", "w1")
	first := s.nextEvent(t)
	require.Equal(t, "join /svc/web w1", first.summary(t))
	require.Equal(t, "default", first.decode(t).Scope)
	require.Equal(t, "t1", first.decode(t).Member.Node)
	applied := first.decode(t).Applied
	require.False(t, applied.Before(before) || applied.After(after), "applied %v, the join ran from %v to %v", applied, before, after)
	require.NotEmpty(t, first.id)
	second := s.nextEvent(t)
	require.Equal(t, "leave /svc/web w1", second.summary(t))
	require.NotEqual(t, first.id, second.id)
}

// A client that lost its stream reconnects with the last id it saw and
// gets exactly what it missed.
func TestWatchResumesWithLastEventID(t *testing.T) {
	base := startAgent(t)
	resp, s := openWatch(t, base+"/v1/scopes/default/watch?pattern=/svc/*")
	join(t, base, "/svc/a", "m1")
	seen := s.nextEvent(t)
	resp.Body.Close()

	join(t, base, "/svc/b", "m2")
	join(t, base, "/other", "x")
	leave(t, base, "/svc/a", "m1")
	_, s = openWatch(t, base+"/v1/scopes/default/watch?pattern=/svc/*", "Last-Event-ID", seen.id)
	join(t, base, "/svc/c", "after")
	var got []string
	for range 3 {
		got = append(got, s.nextEvent(t).summary(t))
	}
	require.Equal(t, []string{"join /svc/b m2", "leave /svc/a m1", "join /svc/c after"}, got)
}

func TestWatchResetsWhenItCannotResume(t *testing.T) {
	base := startAgent(t, "--watch-journal", "4")
	_, s := openWatch(t, base+"/v1/scopes/default/watch?pattern=/g")
	join(t, base, "/g", "m0")
	old := s.nextEvent(t).id
	for i := range 6 {
		join(t, base, "/g", fmt.Sprint("m", i+1))
	}
	epoch, _, _ := strings.Cut(old, "-")
	for _, id := range []string{
		"garbage",
		"0a0b0c0d0e0f-1",  // another run of the node
		epoch + "-999999", // not issued yet
		old,               // six changes ago, in a journal of four
	} {
		_, s := openWatch(t, base+"/v1/scopes/default/watch?pattern=/g", "Last-Event-ID", id)
		ev := s.nextEvent(t)
		require.Equal(t, "reset", ev.kind, id)
		require.NotEmpty(t, ev.decode(t).Error)
		_, err := s.next()
		require.ErrorIs(t, err, io.EOF, "the stream ends after a reset")
	}
}

// snapshot=1: the members at one point, then every change after it, no
// gap and no duplicate, while other clients keep joining and leaving.
func TestWatchSnapshotThenChangesHaveNoGapUnderConcurrentJoins(t *testing.T) {
	base := startAgent(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := fmt.Sprintf("w%d-%d", w, i%20)
				if i%3 == 2 {
					code, _ := call(t, "POST", base+"/v1/scopes/default/leave", fmt.Sprintf(`{"group":"/svc/x","member":%q}`, m))
					require.Contains(t, []int{200, 404}, code)
				} else {
					join(t, base, "/svc/x", m)
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	_, s := openWatch(t, base+"/v1/scopes/default/watch?pattern=/svc/*&snapshot=1")
	counts := map[string]int{}
	for {
		ev := s.nextEvent(t)
		if ev.kind == "synced" {
			require.NotEmpty(t, ev.id, "synced carries the id to resume from")
			break
		}
		require.Equal(t, "member", ev.kind)
		d := ev.decode(t)
		counts[d.Member.ID] = d.Member.Count
	}
	require.NotEmpty(t, counts, "the joiners had members in before the snapshot")
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	join(t, base, "/svc/end", "marker")
	for {
		ev := s.nextEvent(t)
		d := ev.decode(t)
		if d.Group == "/svc/end" {
			break
		}
		counts[d.Member.ID] = d.Member.Count
	}
	_, out := call(t, "GET", base+"/v1/scopes/default/members?name=/svc/x", "")
	want := map[string]int{}
	for _, m := range out["members"].([]any) {
		m := m.(map[string]any)
		want[m["id"].(string)] = int(m["count"].(float64))
	}
	for id, c := range counts {
		if c == 0 {
			delete(counts, id)
		}
	}
	require.Equal(t, want, counts, "snapshot + changes = the members now")
}

func TestWatchHeartbeatsOnAQuietStream(t *testing.T) {
	base := startAgent(t, "--watch-heartbeat", "50ms")
	_, s := openWatch(t, base+"/v1/scopes/default/watch?pattern=/quiet")
	start := time.Now()
	for range 2 {
		ev, err := s.next()
		require.NoError(t, err)
		require.Equal(t, "heartbeat", ev.comment)
	}
	require.Less(t, time.Since(start), 2*time.Second)
}

// A client that stops reading is cut off once a write waits longer than
// --watch-write-timeout; meanwhile joins go on at their pace, and the
// stream's slot is free again afterwards.
func TestNonReadingWatcherIsCutOffAndNeverSlowsJoins(t *testing.T) {
	base := startAgent(t, "--watch-write-timeout", "300ms", "--max-watches-per-client", "1", "--log-level", "error")
	// A small receive buffer, so the server's writes block soon.
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	conn, err := dialer.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /v1/scopes/default/watch?pattern=/busy HTTP/1.1\r\nHost: %s\r\n\r\n", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	// The stream is open once a second one from this client is refused.
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/v1/scopes/default/watch?pattern=/other")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusTooManyRequests
	}, 5*time.Second, 10*time.Millisecond)

	meta := fmt.Sprintf(`{"v":%q}`, strings.Repeat("x", 3000))
	joins := func(n int, prefix string) time.Duration {
		start := time.Now()
		for i := range n {
			code, out := call(t, "POST", base+"/v1/scopes/default/join", fmt.Sprintf(`{"group":"/busy","member":"%s%d","meta":%s}`, prefix, i, meta))
			require.Equal(t, 200, code, out)
		}
		return time.Since(start)
	}
	took := joins(2000, "m") // about 6 MB of events the client never reads
	t.Logf("2000 joins beside a stalled watcher: %v", took)
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/v1/scopes/default/watch?pattern=/other")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "the stalled stream was cut off and its slot freed")

	// What the client finds when it reads at last: what fit in the
	// buffers, then the end of the stream.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.Copy(io.Discard, conn)
	if err != nil {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server closed the stream: %v", err)
	}
}

func TestWatchLimitsAnswer429(t *testing.T) {
	base := startAgent(t, "--max-watches", "2", "--max-watches-per-client", "1")
	openWatch(t, base+"/v1/scopes/default/watch?pattern=/a")
	resp, _ := openWatch(t, base+"/v1/scopes/default/watch?pattern=/b")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	var body errorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Contains(t, body.Error, "--max-watches-per-client")

	// Another client (another loopback address) gets the node's second
	// slot, and a third client none.
	other := func(ip string) *http.Response {
		c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}}
		t.Cleanup(c.CloseIdleConnections)
		resp, err := c.Get(base + "/v1/scopes/default/watch?pattern=/c")
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	require.Equal(t, http.StatusOK, other("127.0.0.2").StatusCode)
	resp = other("127.0.0.3")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Contains(t, body.Error, "--max-watches)")
	resp, _ = openWatch(t, base+"/v1/nodes/watch")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "node streams count too")
}

// A stream owns its connection: the server no longer says when the client
// goes, so the stream must see it itself and free its slot at once, not
// at its next write (a heartbeat, 15 s away).
func TestClosedWatchFreesItsSlotAtOnce(t *testing.T) {
	base := startAgent(t, "--max-watches-per-client", "1")
	// Each watch can open only once the one before it, closed by the
	// client, has given its slot back. (A probe watch opened and closed to
	// check would hold the slot itself until the agent saw it close.)
	for i := range 4 {
		var resp *http.Response
		require.Eventually(t, func() bool {
			r, err := http.Get(base + "/v1/scopes/default/watch?pattern=/quiet")
			if err != nil {
				return false
			}
			if r.StatusCode != http.StatusOK {
				r.Body.Close()
				return false
			}
			resp = r
			return true
		}, 2*time.Second, 10*time.Millisecond, "watch %d: the slot of the watch closed before it is freed", i)
		require.True(t, resp.Close, "the connection is the stream's: Connection: close")
		resp.Body.Close()
	}
}

func TestWatchRefusesBadRequests(t *testing.T) {
	base := startAgent(t)
	for _, q := range []string{"", "?pattern=/a/**", "?pattern=/a&snapshot=yes", "?pattern=/a&color=red", "?pattern=/a&pattern=/b"} {
		code, out := call(t, "GET", base+"/v1/scopes/default/watch"+q, "")
		require.Equal(t, 400, code, q)
		require.NotEmpty(t, out["error"], q)
	}
	code, _ := call(t, "GET", base+"/v1/scopes/nosuch/watch?pattern=/a", "")
	require.Equal(t, 404, code)
}

// A stream ends promptly when the node shuts down, with "closed".
func TestWatchEndsWhenTheAgentStops(t *testing.T) {
	agent := startAgentUntil(t, "--data-dir", t.TempDir())
	_, s := openWatch(t, agent.base+"/v1/scopes/default/watch?pattern=/g")
	_, nodes := openWatch(t, agent.base+"/v1/nodes/watch")
	require.Equal(t, "synced", nodes.nextEvent(t).kind, "a node on its own knows no nodes")
	start := time.Now()
	agent.stop()
	require.Equal(t, "closed", s.nextEvent(t).kind)
	_, err := s.next()
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, "closed", nodes.nextEvent(t).kind)
	require.Less(t, time.Since(start), 2*time.Second)
}

// A watch on one node of a cluster sees the joins and leaves made on
// another; the node stream lists both nodes and sees one leave.
func TestClusterWatchSeesRemoteChangesAndNodeStatus(t *testing.T) {
	flags := []string{"--gossip", "127.0.0.1:0", "--cluster-key", testKey, "--gossip-profile", "loopback", "--log-level", "warn"}
	first := startAgent(t, append([]string{"--name", "n1"}, flags...)...)
	_, out := call(t, "GET", first+"/v1/nodes", "")
	gossip := out["nodes"].([]any)[0].(map[string]any)["gossip"].(string)
	second := startAgentUntil(t, "--name", "n2", "--data-dir", t.TempDir(), "--join", gossip, "--cluster-key", testKey, "--gossip-profile", "loopback", "--log-level", "warn")

	_, s := openWatch(t, second.base+"/v1/scopes/default/watch?pattern=/svc/*")
	join(t, first, "/svc/db", "db-1")
	leave(t, first, "/svc/db", "db-1")
	ev := s.nextEvent(t)
	require.Equal(t, "join /svc/db db-1", ev.summary(t))
	require.Equal(t, "n1", ev.decode(t).Member.Node)
	require.Equal(t, "leave /svc/db db-1", s.nextEvent(t).summary(t))

	_, nodes := openWatch(t, first+"/v1/nodes/watch")
	var known []string
	for {
		ev := nodes.nextEvent(t)
		if ev.kind == "synced" {
			break
		}
		require.Equal(t, "node", ev.kind)
		var n nodeJSON
		require.NoError(t, json.Unmarshal([]byte(ev.data), &n))
		known = append(known, n.Name+"="+n.Status)
	}
	require.ElementsMatch(t, []string{"n1=alive", "n2=alive"}, known)
	second.stop()
	for {
		ev := nodes.nextEvent(t)
		var n nodeJSON
		require.NoError(t, json.Unmarshal([]byte(ev.data), &n))
		if n.Name == "n2" && ev.kind == "left" {
			require.Equal(t, "left", n.Status)
			break
		}
	}
}

// Changes that come faster than the write interval (here one stream open
// and --watch-writes 1: 1 s) reach the stream in one write (one chunk of
// the response), after a first one that goes out at once.
func TestWatchBatchesChangesThatComeFast(t *testing.T) {
	base := startAgent(t, "--watch-writes", "1")
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /v1/scopes/default/watch?pattern=/g HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if line == "\r\n" {
			break
		}
	}
	chunk := func() string {
		var size int
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		_, err = fmt.Sscanf(line, "%x", &size)
		require.NoError(t, err, line)
		b := make([]byte, size+2)
		_, err = io.ReadFull(r, b)
		require.NoError(t, err)
		return string(b[:size])
	}
	require.Equal(t, ": heartbeat\n\n", chunk())
	join(t, base, "/g", "first")
	require.Equal(t, 1, strings.Count(chunk(), "event: join"), "a change after a quiet spell goes out at once")
	for i := range 5 {
		join(t, base, "/g", fmt.Sprint("m", i))
	}
	require.Equal(t, 5, strings.Count(chunk(), "event: join"), "the five that came within the interval go out together")
}

// A stream outlives the server's timeouts: each write gets a deadline of
// its own (without it the server's --write-timeout ends the stream).
func TestWatchOutlivesTheServerTimeouts(t *testing.T) {
	base := startAgent(t, "--read-timeout", "200ms", "--write-timeout", "200ms", "--watch-heartbeat", "100ms")
	_, s := openWatch(t, base+"/v1/scopes/default/watch?pattern=/g")
	time.Sleep(time.Second)
	join(t, base, "/g", "late")
	require.Equal(t, "join /g late", s.nextEvent(t).summary(t))
}
