package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one node's HTTP API.
type Client struct {
	base string
	http *http.Client
}

func newClient(base string) Client {
	return Client{base: base, http: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 16,
		// A stopped or partitioned node must not hang a test's poll.
		ResponseHeaderTimeout: 5 * time.Second,
	}}}
}

// ErrNotFound is a 404 from the API.
var ErrNotFound = errors.New("proctest: not found")

func (c Client) do(ctx context.Context, method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s %s: %s", ErrNotFound, method, path, strings.TrimSpace(string(data)))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("proctest: %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

type membership struct {
	Group  string `json:"group"`
	Member string `json:"member"`
}

// Join joins member to group in scope.
func (c Client) Join(ctx context.Context, scope, group, member string) error {
	return c.do(ctx, "POST", "/v1/scopes/"+scope+"/join", membership{group, member}, nil)
}

// Leave takes back one join of member to group.
func (c Client) Leave(ctx context.Context, scope, group, member string) error {
	return c.do(ctx, "POST", "/v1/scopes/"+scope+"/leave", membership{group, member}, nil)
}

// Member is a member as the API lists it.
type Member struct {
	ID   string `json:"id"`
	Node string `json:"node"`
}

// Members lists the members of a group; none (and no error) when the group
// does not exist.
func (c Client) Members(ctx context.Context, scope, group string) ([]Member, error) {
	var out struct {
		Members []Member `json:"members"`
	}
	err := c.do(ctx, "GET", "/v1/scopes/"+scope+"/members?name="+url.QueryEscape(group), nil, &out)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return out.Members, err
}

// Digest is a replica's summary: equal on converged nodes.
type Digest struct {
	Digest  string `json:"digest"`
	Groups  int    `json:"groups"`
	Members int    `json:"members"`
}

// Digest returns the node's digest of scope.
func (c Client) Digest(ctx context.Context, scope string) (Digest, error) {
	var d Digest
	err := c.do(ctx, "GET", "/v1/scopes/"+scope+"/digest", nil, &d)
	return d, err
}

// ActivePeers returns the names of the peers the node holds overlay links
// to.
func (c Client) ActivePeers(ctx context.Context) ([]string, error) {
	var out struct {
		Active []struct{ Name string } `json:"active"`
	}
	if err := c.do(ctx, "GET", "/v1/overlay", nil, &out); err != nil {
		return nil, err
	}
	names := make([]string, len(out.Active))
	for i, p := range out.Active {
		names[i] = p.Name
	}
	return names, nil
}

// NodeStatus maps each node the node knows to its status (alive, suspect,
// dead, left).
func (c Client) NodeStatus(ctx context.Context) (map[string]string, error) {
	var out struct {
		Nodes []struct{ Name, Status string } `json:"nodes"`
	}
	if err := c.do(ctx, "GET", "/v1/nodes", nil, &out); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(out.Nodes))
	for _, n := range out.Nodes {
		m[n.Name] = n.Status
	}
	return m, nil
}

// Event is one watch event, stamped when this process read it.
type Event struct {
	Kind   string // join, leave, meta, overflow
	Group  string
	Member Member
	At     time.Time // when this process read it
	// Applied is when the watched node applied it (its "applied"): when a
	// lookup there began to show it.
	Applied time.Time
}

// Recording is what a watch stream carried until it had shown the joins
// it was recording for, ended or overflowed, kept as bytes until Parse.
type Recording struct {
	data  []byte
	reads []streamRead
	err   error
}

// Parsed is a Recording's events.
type Parsed struct {
	Events []Event
	// Overflow is set when the node cut the stream off for falling behind.
	Overflow bool
	// Err is why the stream ended early or could not be read, if it did.
	Err error
}

type streamRead struct {
	end int // offset in data just past this read
	at  time.Time
}

// Record watches the scope's groups matching pattern until the stream has
// shown joins joins (or overflowed, or ended with ctx), and then sends
// what it carried, once, to be parsed when the measurement is over. It
// returns once the stream is open, so every change made after it returns
// is seen.
//
// While recording it only copies the stream's bytes and stamps each read.
// A benchmark that decoded thousands of events as they came took the CPU
// the nodes it measures were using (about 10 µs an event, 80 ms for a
// burst seen by four nodes), where OTP pg's benchmark lets its observers
// stamp their notifications in their own VMs and collects them afterwards.
func (c Client) Record(ctx context.Context, scope, pattern string, joins int) (<-chan *Recording, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/v1/scopes/"+scope+"/watch?pattern="+url.QueryEscape(pattern), nil)
	if err != nil {
		return nil, err
	}
	// A watch runs as long as ctx: no response timeout past the headers.
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("proctest: watch %s: %s", pattern, resp.Status)
	}
	done := make(chan *Recording, 1)
	go func() {
		defer resp.Body.Close()
		rec := &Recording{}
		rec.read(resp.Body, joins)
		done <- rec
	}()
	return done, nil
}

var (
	joinEventLine     = []byte("event: join\n")
	overflowEventLine = []byte("event: overflow\n")
	eventEnd          = []byte("\n\n")
)

// read copies the stream until it has shown joins join events, an
// overflow, or its end.
func (r *Recording) read(body io.Reader, joins int) {
	r.data = make([]byte, 0, 1<<20)
	seen, scanned := 0, 0
	for {
		if len(r.data) == cap(r.data) {
			r.data = append(r.data, 0)[:len(r.data)]
		}
		n, err := body.Read(r.data[len(r.data):cap(r.data)])
		if n > 0 {
			r.data = r.data[:len(r.data)+n]
			r.reads = append(r.reads, streamRead{end: len(r.data), at: time.Now()})
			// An event cut by this read's end is counted by the next.
			end := bytes.LastIndex(r.data, eventEnd)
			if whole := end + len(eventEnd); end >= 0 && whole > scanned {
				seen += bytes.Count(r.data[scanned:whole], joinEventLine)
				if bytes.Contains(r.data[scanned:whole], overflowEventLine) {
					return
				}
				scanned = whole
			}
			if seen >= joins {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
				r.err = err
			}
			return
		}
	}
}

// Parse turns the recorded bytes into events, each stamped with the end
// of the read that completed it.
func (r *Recording) Parse() Parsed {
	out := Parsed{Err: r.err}
	var kind string
	off, read := 0, 0
	for off < len(r.data) {
		nl := bytes.IndexByte(r.data[off:], '\n')
		if nl < 0 {
			break
		}
		line := r.data[off : off+nl]
		off += nl + 1
		for read < len(r.reads)-1 && r.reads[read].end < off {
			read++
		}
		switch {
		case bytes.HasPrefix(line, []byte("event: ")):
			kind = string(line[len("event: "):])
			if kind == "overflow" {
				out.Overflow = true
			}
		case bytes.HasPrefix(line, []byte("data: ")):
			var d struct {
				Group   string    `json:"group"`
				Member  Member    `json:"member"`
				Applied time.Time `json:"applied"`
			}
			if err := json.Unmarshal(line[len("data: "):], &d); err != nil && out.Err == nil {
				out.Err = fmt.Errorf("proctest: a watch event %q: %w", line, err)
			}
			out.Events = append(out.Events, Event{Kind: kind, Group: d.Group, Member: d.Member, At: r.reads[read].at, Applied: d.Applied})
		}
	}
	return out
}

// waitFor polls cond every 2 ms until it holds or within passes; errors
// from cond count as "not yet" (a node may be briefly unreachable) and the
// last one is reported on timeout.
func waitFor(within time.Duration, what string, cond func(ctx context.Context) (bool, error)) error {
	deadline := time.Now().Add(within)
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok, err := cond(ctx)
		cancel()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("proctest: %s: not within %v (last error: %v)", what, within, last)
			}
			return fmt.Errorf("proctest: %s: not within %v", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
