package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var uiScreenshot = flag.String("ui-screenshot", "", "also write the status page's screenshot from the browser test to this PNG file")

// The page's files come with the headers that keep a browser from running
// anything but them, and nothing else is served under their routes.
func TestStatusPageServesItsFilesSafely(t *testing.T) {
	base := startAgent(t, "--token", "s3cret")
	for path, contentType := range map[string]string{
		"/":             "text/html; charset=utf-8",
		"/ui/app.js":    "text/javascript; charset=utf-8",
		"/ui/style.css": "text/css; charset=utf-8",
	} {
		// No token: the page must load to ask for it; only /v1 needs one.
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		body := new(bytes.Buffer)
		_, err = body.ReadFrom(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, path)
		require.Equal(t, contentType, resp.Header.Get("Content-Type"), path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'", path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'", path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
		require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), path)
		require.NotZero(t, body.Len(), path)
	}
	for _, path := range []string{"/ui/", "/ui/index.go", "/ui/..%2fui.go", "/index.html"} {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 404, resp.StatusCode, path)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), path)
	}
}

// findBrowser returns the headless browser's path. Without one the test
// skips, except under CI, whose script installs it: there it fails.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium found under CI: .ci/run installs Debian's chromium with apt-get")
	}
	t.Skip("no headless browser: install Debian's chromium (apt-get install chromium) to run the status page's test")
	return ""
}

// browseOptions: Screenshot asks for one; VirtualTime is how long the page
// lives by its own clock (default 5 s).
type browseOptions struct {
	Screenshot  bool
	VirtualTime time.Duration
}

// browse opens url in headless chromium and returns the DOM as the page's
// scripts left it and, if asked, a screenshot of it. Virtual time lets the
// page's timers run ahead while the network is idle, so a few seconds of
// the page's life take far less.
func browse(t *testing.T, browser, url string, opt browseOptions) (dom string, shot image.Image) {
	t.Helper()
	dir := t.TempDir()
	shotFile := filepath.Join(dir, "page.png")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
		"--hide-scrollbars", "--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1280,900",
		"--enable-logging=stderr", "--v=0", "--dump-dom"}
	budget := cmp.Or(opt.VirtualTime, 5*time.Second)
	args = append(args, fmt.Sprintf("--virtual-time-budget=%d", budget.Milliseconds()))
	if opt.Screenshot {
		args = append(args, "--screenshot="+shotFile)
	}
	cmd := exec.CommandContext(ctx, browser, append(args, url)...)
	// The browser runs as a tree of processes: on a timeout, end them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	require.NoError(t, cmd.Run(), "chromium: %s", stderr.String())
	t.Logf("chromium took %v", time.Since(start))
	// The page's console: a script error or a resource the page's own
	// security policy refused means the page is broken, whatever it shows.
	for _, line := range strings.Split(stderr.String(), "\n") {
		if !strings.Contains(line, ":CONSOLE") {
			continue
		}
		if strings.Contains(line, "Uncaught") || strings.Contains(line, "Content Security Policy") {
			t.Errorf("the page's console: %s", line)
		} else {
			t.Logf("the page's console: %s", line)
		}
	}
	if !opt.Screenshot {
		return stdout.String(), nil
	}
	f, err := os.Open(shotFile)
	require.NoError(t, err, "chromium wrote no screenshot: %s", stderr.String())
	defer f.Close()
	shot, err = png.Decode(f)
	require.NoError(t, err)
	return stdout.String(), shot
}

// requireDOM checks that the rendered DOM holds every fragment.
func requireDOM(t *testing.T, dom string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(dom, f) {
			t.Fatalf("the page does not show %s; its DOM:\n%s", f, dom)
		}
	}
}

// requireDrawn checks that a screenshot is a drawn page: many colours, a
// good part of it not background, and some pixels of the given colour.
func requireDrawn(t *testing.T, shot image.Image, want color.RGBA, wantName string) {
	t.Helper()
	counts := map[color.RGBA]int{}
	b := shot.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := shot.At(x, y).RGBA()
			counts[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255}]++
		}
	}
	background := 0
	for _, n := range counts {
		background = max(background, n)
	}
	total := b.Dx() * b.Dy()
	require.Greater(t, len(counts), 50, "distinct colours in the screenshot")
	require.Greater(t, total-background, total/20, "pixels that are not background")
	require.Greater(t, counts[want], 100, "pixels of %s", wantName)
}

// gatedProxy stands between the browser and an agent. Once the page has
// opened its watch of the default scope and counted /svc/db after that, it
// holds the page's next overlay call while hold runs: the page's timers
// stand still meanwhile, and whatever the page shows of hold's changes
// can only have come through the streams.
type gatedProxy struct {
	proxy *httputil.ReverseProxy
	hold  func()

	mu       sync.Mutex
	watching bool
	listed   bool
	held     bool

	spyMu  sync.Mutex
	wanted map[string]chan struct{} // text a stream must carry: closed once one has
}

// carried returns a channel closed once a stream has carried text to the
// page.
func (p *gatedProxy) carried(text string) <-chan struct{} {
	p.spyMu.Lock()
	defer p.spyMu.Unlock()
	if p.wanted == nil {
		p.wanted = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	p.wanted[text] = ch
	return ch
}

func (p *gatedProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/watch") {
		w = &streamSpy{ResponseWriter: w, p: p}
	}
	p.mu.Lock()
	switch {
	case r.URL.Path == "/v1/scopes/default/watch":
		p.watching = true
	case r.URL.Path == "/v1/overlay" && p.listed && !p.held:
		p.held = true
		p.hold()
	}
	p.mu.Unlock()
	p.proxy.ServeHTTP(w, r)
	if r.URL.Path == "/v1/scopes/default/members" && r.URL.Query().Get("name") == "/svc/db" {
		p.mu.Lock()
		p.listed = p.listed || p.watching
		p.mu.Unlock()
	}
}

// streamSpy passes a stream on and tells its gatedProxy what went by.
type streamSpy struct {
	http.ResponseWriter
	p *gatedProxy
}

func (s *streamSpy) Write(b []byte) (int, error) {
	s.p.spyMu.Lock()
	for text, ch := range s.p.wanted {
		if bytes.Contains(b, []byte(text)) {
			close(ch)
			delete(s.p.wanted, text)
		}
	}
	s.p.spyMu.Unlock()
	return s.ResponseWriter.Write(b)
}

func (s *streamSpy) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// joinAndWait joins member to group through one agent and waits until
// another lists it. It returns its failure rather than failing the test,
// as it runs in a request handler's goroutine.
func joinAndWait(through, seenBy, group, member string) error {
	body := fmt.Sprintf(`{"group":%q,"member":%q}`, group, member)
	resp, err := http.Post(through+"/v1/scopes/default/join", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("join %s: status %d", body, resp.StatusCode)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		resp, err := http.Get(seenBy + "/v1/scopes/default/members?name=" + url.QueryEscape(group))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return nil
		}
	}
	return fmt.Errorf("%s never listed %s", seenBy, group)
}

// The status page of a cluster, in a real browser: it shows the nodes
// alive with this one marked, its overlay peers, the scopes and groups
// with their member counts, and it draws all that. A group that appears
// and a node that leaves after the page loaded show through the streams.
func TestStatusPageInABrowser(t *testing.T) {
	browser := findBrowser(t)
	cluster := []string{"--cluster-key", testKey, "--gossip-profile", "loopback", "--log-level", "warn"}
	n1 := startAgent(t, append([]string{"--name", "n1", "--gossip", "127.0.0.1:0"}, cluster...)...)
	_, out := call(t, "GET", n1+"/v1/nodes", "")
	gossip := out["nodes"].([]any)[0].(map[string]any)["gossip"].(string)
	n2 := startAgent(t, append([]string{"--name", "n2", "--join", gossip}, cluster...)...)
	n3 := startAgent(t, append([]string{"--name", "n3", "--join", gossip}, cluster...)...)
	_, stopN4 := startStoppableAgent(t, append([]string{"--name", "n4", "--join", gossip}, cluster...)...)

	for _, j := range []struct{ node, scope, body string }{
		{n1, "default", `{"group":"/svc/db","member":"db-1"}`},
		{n2, "default", `{"group":"/svc/db","member":"db-2"}`},
		{n3, "default", `{"group":"/svc/web","member":"web-1"}`},
		{n3, "jobs", `{"group":"/queue/mail","member":"mailer"}`},
	} {
		code, out := call(t, "POST", j.node+"/v1/scopes/"+j.scope+"/join", j.body)
		require.Equal(t, 200, code, out)
	}
	require.Eventually(t, func() bool {
		_, nodes := call(t, "GET", n1+"/v1/nodes", "")
		_, overlay := call(t, "GET", n1+"/v1/overlay", "")
		_, digest := call(t, "GET", n1+"/v1/scopes/default/digest", "")
		code, _ := call(t, "GET", n1+"/v1/scopes/jobs/groups", "")
		return len(nodes["nodes"].([]any)) == 4 && len(overlay["active"].([]any)) >= 2 &&
			digest["members"] == float64(3) && code == 200
	}, 10*time.Second, 10*time.Millisecond, "n1 sees the cluster and its members")

	target, err := url.Parse(n1)
	require.NoError(t, err)
	gate := &gatedProxy{proxy: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}}
	gate.hold = func() {
		joined := gate.carried(`"group":"/svc/late"`)
		left := gate.carried(`"name":"n4","status":"left"`)
		if err := joinAndWait(n2, n1, "/svc/late", "late-1"); err != nil {
			t.Error(err)
			return
		}
		if err := stopN4(); err != nil {
			t.Error(err)
			return
		}
		for what, ch := range map[string]<-chan struct{}{"the join of /svc/late": joined, "n4 leaving": left} {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Errorf("the page's streams never carried %s", what)
			}
		}
		// Leave the browser time to read what was sent before the
		// page's clock runs again.
		time.Sleep(200 * time.Millisecond)
	}
	front := httptest.NewServer(gate)
	t.Cleanup(front.Close)

	dom, shot := browse(t, browser, front.URL+"/", browseOptions{Screenshot: true})
	requireDOM(t, dom,
		`<body data-state="ready">`,
		`<small id="nodes-mode">(live)</small>`,
		`<tr data-node="n1" data-status="alive" class="is-self">`,
		`<tr data-node="n2" data-status="alive">`,
		`<tr data-node="n3" data-status="alive">`,
		`<g data-peer="n2" data-view="active"`,
		`<g data-peer="n3" data-view="active"`,
		`<g data-peer="n1" data-view="self">`,
		`<div class="scope" data-scope="default">`,
		`<tr data-group="/svc/db" data-count="2"><td>/svc/db</td><td class="num">2</td><td>n1, n2</td></tr>`,
		`<tr data-group="/svc/web" data-count="1">`,
		`<div class="scope" data-scope="jobs">`,
		`<tr data-group="/queue/mail" data-count="1">`,
	)
	gate.mu.Lock()
	held := gate.held
	gate.mu.Unlock()
	require.True(t, held, "the page never called the overlay again after listing the watched scope")
	requireDOM(t, dom,
		`<tr data-node="n4" data-status="left">`,
		`<tr data-group="/svc/late" data-count="1">`,
		`<h3>default<span class="muted"> 3 groups, 4 members</span>`)
	requireDrawn(t, shot, color.RGBA{0x1a, 0x7f, 0x37, 0xff}, "the green of an alive node's badge")
	if *uiScreenshot != "" {
		f, err := os.Create(*uiScreenshot)
		require.NoError(t, err)
		require.NoError(t, png.Encode(f, shot))
		require.NoError(t, f.Close())
	}
}

// An agent with --token: the page asks for the token and shows nothing of
// the registry without it; given the token, it shows the node.
func TestStatusPageAsksForTheToken(t *testing.T) {
	browser := findBrowser(t)
	base := startAgent(t, "--token", "s3cret")
	code, out := call(t, "POST", base+"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-1"}`)
	require.Equal(t, 401, code, out)
	req, err := http.NewRequest("POST", base+"/v1/scopes/default/join", strings.NewReader(`{"group":"/svc/db","member":"db-1"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	dom, shot := browse(t, browser, base+"/", browseOptions{Screenshot: true})
	requireDOM(t, dom, `<body data-state="token">`, `<form id="token-form" class="card token">`, `<main id="main" hidden="">`)
	require.NotContains(t, dom, `data-group="/svc/db"`)
	// Hidden in the DOM is not enough: a style that sets display can
	// still show it. Below the form the page must be blank.
	b := shot.Bounds()
	blank := shot.At(b.Min.X, b.Max.Y-1)
	for y := b.Min.Y + b.Dy()/2; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if shot.At(x, y) != blank {
				t.Fatalf("the lower half of the token page is not blank: pixel (%d,%d) is %v, not %v", x, y, shot.At(x, y), blank)
			}
		}
	}

	dom, _ = browse(t, browser, base+"/#token=wrong", browseOptions{})
	requireDOM(t, dom, `<body data-state="token">`, `<p id="token-error" class="error">the agent refused this token: `)

	// A fragment never reaches the server; the page keeps the token in
	// session storage and sends it as a bearer token.
	dom, _ = browse(t, browser, base+"/#token=s3cret", browseOptions{})
	requireDOM(t, dom, `<body data-state="ready">`, `<p id="nodes-alone" class="muted">`,
		`<tr data-group="/svc/db" data-count="1">`)
}

// fakeAgent serves the status page and an imitation of the /v1 calls it
// makes, with streams in the agreed format, so the page's reading of them
// is checked whatever the real agent serves today.
type fakeAgent struct {
	// refuseStreams answers every stream 429, as an agent does past its
	// watch limits.
	refuseStreams bool
	// silentNodes: the node stream sends its snapshot, then not a byte
	// more, not even a heartbeat, as a connection that died without
	// closing.
	silentNodes bool

	mu           sync.Mutex
	nodeWatches  int
	scopeWatches int
	pagesAsked   []string
}

func (f *fakeAgent) handler() http.Handler {
	mux := http.NewServeMux()
	(&api{}).uiRoutes(mux)
	node := func(name, status string, rtt float64) string {
		return fmt.Sprintf(`{"name":%q,"status":%q,"incarnation":1,"rtt_ms":%g,"addr":"","gossip":"","http":""}`, name, status, rtt)
	}
	refused := func(w http.ResponseWriter) bool {
		if f.refuseStreams {
			writeJSON(w, http.StatusTooManyRequests, errorBody{"too many watches"})
		}
		return f.refuseStreams
	}
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"nodes":[%s,%s]}`, node("a", "alive", 0), node("b", "suspect", 0.5))
	})
	mux.HandleFunc("GET /v1/nodes/watch", func(w http.ResponseWriter, r *http.Request) {
		if refused(w) {
			return
		}
		f.mu.Lock()
		f.nodeWatches++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": heartbeat\n\n")
		for _, n := range []string{node("a", "alive", 0), node("b", "alive", 0.5), node("c", "alive", 0.7)} {
			fmt.Fprintf(w, "event: node\ndata: %s\n\n", n)
		}
		fmt.Fprintf(w, "id: e1-1\nevent: synced\ndata: {}\n\n")
		if f.silentNodes {
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		fmt.Fprintf(w, "id: e1-2\nevent: suspect\ndata: %s\n\n", node("c", "suspect", 0.7))
		// A change split across writes, with CRLF line ends, as a proxy
		// may deliver it.
		fmt.Fprintf(w, "id: e1-3\r\nevent: dead\r\n")
		w.(http.Flusher).Flush()
		fmt.Fprintf(w, "data: %s\r\n\r\n", node("c", "dead", 0.7))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("GET /v1/overlay", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"name":"a","active":[{"name":"b","addr":"x"},{"name":"d","addr":"y"}],"passive":[{"name":"c","addr":"z"}],"eager":["d"],"lazy":["b"]}`)
	})
	mux.HandleFunc("GET /v1/scopes", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"scopes":["s"]}`)
	})
	mux.HandleFunc("GET /v1/scopes/s/digest", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"digest":"0-0","groups":1,"members":3}`)
	})
	mux.HandleFunc("GET /v1/scopes/s/groups", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"groups":["/big"]}`)
	})
	mux.HandleFunc("GET /v1/scopes/s/members", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.pagesAsked = append(f.pagesAsked, r.URL.RawQuery)
		f.mu.Unlock()
		// One member a page, three pages: the page must follow "next".
		switch r.URL.Query().Get("after") {
		case "":
			fmt.Fprint(w, `{"group":"/big","members":[{"id":"m1","node":"a","count":1,"joined":"2026-01-01T00:00:00Z"}],"next":"c1"}`)
		case "c1":
			fmt.Fprint(w, `{"group":"/big","members":[{"id":"m2","node":"b","count":1,"joined":"2026-01-01T00:00:00Z"}],"next":"c2"}`)
		default:
			fmt.Fprint(w, `{"group":"/big","members":[{"id":"m3","node":"b","count":2,"joined":"2026-01-01T00:00:00Z"}]}`)
		}
	})
	mux.HandleFunc("GET /v1/scopes/s/watch", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.scopeWatches++
		first := f.scopeWatches == 1
		f.mu.Unlock()
		if refused(w) {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": heartbeat\n\n")
		if first {
			// The first stream cannot resume: the page must watch again.
			fmt.Fprint(w, "event: reset\ndata: {\"error\":\"unknown event id\"}\n\n")
			return
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	return mux
}

// The page follows the streams as agreed: the nodes stream's snapshot and
// later changes (split across writes, CRLF line ends), a scope stream that
// says it cannot resume (the page watches again), members counted across
// pages, and the overlay's eager and lazy links and passive peers drawn.
func TestStatusPageFollowsTheStreams(t *testing.T) {
	browser := findBrowser(t)
	fake := &fakeAgent{}
	srv := httptest.NewServer(fake.handler())
	t.Cleanup(srv.Close)

	dom, _ := browse(t, browser, srv.URL+"/", browseOptions{})
	requireDOM(t, dom,
		`<body data-state="ready">`,
		`<small id="nodes-mode">(live)</small>`,
		`<tr data-node="a" data-status="alive" class="is-self">`,
		`<tr data-node="b" data-status="alive">`,
		`<tr data-node="c" data-status="dead">`,
		`<g data-peer="b" data-view="active" data-link="lazy">`,
		`<g data-peer="d" data-view="active" data-link="eager">`,
		`<line class="lazy"`,
		`<g data-peer="c" data-view="passive">`,
		`<tr data-group="/big" data-count="3"><td>/big</td><td class="num">3</td><td>a, b</td></tr>`,
		`<span class="live"> ● live</span>`,
	)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	require.GreaterOrEqual(t, fake.scopeWatches, 2, "the page watches again after a reset")
	require.Contains(t, fake.pagesAsked, "name=%2Fbig&limit=1000&after=c2")
}

// An agent that refuses streams (429: too many watches) still gets a page
// that shows everything, polled, and that does not ask for a stream again
// and again.
func TestStatusPagePollsWhenStreamsAreRefused(t *testing.T) {
	browser := findBrowser(t)
	fake := &fakeAgent{refuseStreams: true}
	srv := httptest.NewServer(fake.handler())
	t.Cleanup(srv.Close)

	dom, _ := browse(t, browser, srv.URL+"/", browseOptions{})
	requireDOM(t, dom,
		`<body data-state="ready">`,
		`<small id="nodes-mode">(polled every 2 s)</small>`,
		`<tr data-node="b" data-status="suspect">`,
		`<tr data-group="/big" data-count="3">`,
		`<span class="muted"> polled</span>`,
	)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	require.Equal(t, 1, fake.scopeWatches, "a refused watch is not asked for again")
}

// A stream that goes silent (no change, no heartbeat) is a connection that
// died without closing: the page drops it and watches again, rather than
// show what it last heard as live.
func TestStatusPageReopensASilentStream(t *testing.T) {
	browser := findBrowser(t)
	fake := &fakeAgent{silentNodes: true}
	srv := httptest.NewServer(fake.handler())
	t.Cleanup(srv.Close)

	dom, _ := browse(t, browser, srv.URL+"/", browseOptions{VirtualTime: 100 * time.Second})
	requireDOM(t, dom, `<body data-state="ready">`, `<tr data-node="c" data-status="alive">`)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	require.GreaterOrEqual(t, fake.nodeWatches, 2, "the page watches the nodes again after 100 s of silence")
}
