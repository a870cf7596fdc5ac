package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// localClusterConfig is the command line of cpgd local-cluster.
type localClusterConfig struct {
	nodes    int
	dir      string
	httpPort int
	logLevel string
	timeout  time.Duration
}

const (
	// localStopTimeout is how long a node may take to leave the cluster
	// after SIGTERM before it is killed.
	localStopTimeout = 10 * time.Second
	// localNodesEnvPrefix marks the environment variables a node would
	// read as flags: the command sets every one it means, and the caller's
	// own (a CPGD_JOIN exported for another agent) must not leak in.
	localNodesEnvPrefix = "CPGD_"
)

// runLocalCluster runs cpgd local-cluster: a cluster of agents on
// loopback, each a child process of this binary with its own data
// directory and ports, the others joining the first. It prints each
// node's API, waits for ctx to end (Ctrl-C, SIGTERM) and then stops them
// all gracefully, killing any that does not leave in time.
func runLocalCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cpgd local-cluster", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg localClusterConfig
	fs.IntVar(&cfg.nodes, "nodes", 3, "how many agents to run")
	fs.StringVar(&cfg.dir, "dir", "", "directory of the nodes' data directories, kept afterwards (default: a temporary one, removed at exit)")
	fs.IntVar(&cfg.httpPort, "http-port", 7401, "API port of the first node; the others take the next ones (0: any free ports)")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "the agents' log lines shown: debug, info, warn or error")
	fs.DurationVar(&cfg.timeout, "start-timeout", 30*time.Second, "how long the nodes may take to start and see each other")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, `usage: cpgd local-cluster [flags]

Run a cluster of agents on this host, each a process of its own with its
own ports and data directory, until Ctrl-C or SIGTERM stops them all.

flags:
`)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		return fmt.Errorf("%w: cpgd local-cluster: %v (cpgd local-cluster --help)", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (cpgd local-cluster --help lists the flags)", errUsage, fs.Args())
	}
	if cfg.nodes < 1 {
		return fmt.Errorf("%w: --nodes %d: want at least 1", errUsage, cfg.nodes)
	}
	if cfg.httpPort < 0 || cfg.httpPort+cfg.nodes-1 > 65535 {
		return fmt.Errorf("%w: --http-port %d: out of range for %d nodes", errUsage, cfg.httpPort, cfg.nodes)
	}
	var shown slog.Level
	if err := shown.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to run its agents: %w", err)
	}

	dir, removeDir := cfg.dir, false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cpgd-local-cluster-"); err != nil {
			return err
		}
		removeDir = true
	}
	key := make([]byte, 32)
	rand.Read(key)
	lc := &localCluster{
		exe: exe, dir: dir, shown: shown,
		key:    base64.StdEncoding.EncodeToString(key),
		log:    &lineWriter{w: stderr},
		exited: make(chan *localNode, cfg.nodes),
	}
	defer func() {
		lc.stop(stdout)
		if removeDir {
			os.RemoveAll(dir)
		}
	}()

	startCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	for i := range cfg.nodes {
		port := 0
		if cfg.httpPort > 0 {
			port = cfg.httpPort + i
		}
		if err := lc.start(startCtx, fmt.Sprintf("n%d", i+1), port); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	if err := lc.waitAllAlive(startCtx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	lc.describe(stdout, removeDir)

	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout, "stopping: every node leaves the cluster")
			return nil
		case n := <-lc.exited:
			fmt.Fprintf(stdout, "%s exited on its own: %v (the others go on; Ctrl-C stops them)\n", n.name, exitStatus(n.cmd))
		}
	}
}

// localCluster is the agents cpgd local-cluster runs.
type localCluster struct {
	exe, dir, key string
	// shown is the least level of the agents' log lines passed on; the
	// agents log at info at least, since their start line says where
	// they listen.
	shown slog.Level
	log   *lineWriter
	nodes []*localNode
	// exited receives each node whose process ended; it holds one per
	// node, so no process's waiter blocks on it.
	exited chan *localNode
}

// localNode is one agent process.
type localNode struct {
	name, api, gossip string
	cmd               *exec.Cmd
	waited            chan struct{}
}

// start runs one agent and returns once it serves its API; the first node
// founds the cluster, the others join it.
func (lc *localCluster) start(ctx context.Context, name string, httpPort int) error {
	dataDir := filepath.Join(lc.dir, name)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	args := []string{"agent", "--name", name,
		"--http", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--bind", "127.0.0.1:0", "--gossip", "127.0.0.1:0",
		"--gossip-profile", "loopback", "--log-level", min(lc.shown, slog.LevelInfo).String(),
		"--data-dir", dataDir}
	if len(lc.nodes) > 0 {
		args = append(args, "--join", lc.nodes[0].gossip)
	}
	cmd := exec.Command(lc.exe, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, localNodesEnvPrefix) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The key goes through the environment: a command line is visible to
	// every user of the host.
	cmd.Env = append(cmd.Env, "CPGD_CLUSTER_KEY="+lc.key)
	// A process group of their own keeps the terminal's Ctrl-C from
	// reaching the agents: this process stops them, each in its turn.
	// Pdeathsig is the backstop should this process be killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := make(chan map[string]string, 1)
	cmd.Stderr = &nodeLog{prefix: name + " | ", out: lc.log, shown: lc.shown, started: started}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	n := &localNode{name: name, cmd: cmd, waited: make(chan struct{})}
	lc.nodes = append(lc.nodes, n)
	go func() {
		_ = cmd.Wait()
		close(n.waited)
		lc.exited <- n
	}()
	select {
	case kv := <-started:
		n.api, n.gossip = kv["http"], kv["gossip"]
		return nil
	case <-n.waited:
		<-lc.exited
		return fmt.Errorf("%s exited at start (%v): its log is above; is port %d taken? --http-port 0 picks free ones", name, exitStatus(cmd), httpPort)
	case <-ctx.Done():
		return fmt.Errorf("%s did not start: %w", name, ctx.Err())
	}
}

// waitAllAlive waits until every node lists every node as alive.
func (lc *localCluster) waitAllAlive(ctx context.Context) error {
	var last string
	for {
		ok := true
		for _, n := range lc.nodes {
			alive, err := aliveNodes(ctx, n.api)
			if err != nil {
				last, ok = fmt.Sprintf("%s: %v", n.name, err), false
				break
			}
			for _, m := range lc.nodes {
				if !alive[m.name] {
					last, ok = fmt.Sprintf("%s does not list %s as alive yet", n.name, m.name), false
				}
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the nodes did not all see each other: %s", last)
		case n := <-lc.exited:
			return fmt.Errorf("%s exited (%v): its log is above", n.name, exitStatus(n.cmd))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// aliveNodes returns the names an agent's GET /v1/nodes lists as alive.
func aliveNodes(ctx context.Context, api string) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/v1/nodes", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/nodes: %s", resp.Status)
	}
	var out struct {
		Nodes []struct{ Name, Status string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET /v1/nodes: %w", err)
	}
	alive := make(map[string]bool, len(out.Nodes))
	for _, n := range out.Nodes {
		alive[n.Name] = n.Status == "alive"
	}
	return alive, nil
}

// describe prints the nodes and a few calls to try.
func (lc *localCluster) describe(w io.Writer, temporary bool) {
	kept := "kept after exit"
	if temporary {
		kept = "removed at exit"
	}
	fmt.Fprintf(w, "cpgd local cluster: %d nodes on loopback, data under %s (%s)\n", len(lc.nodes), lc.dir, kept)
	for _, n := range lc.nodes {
		fmt.Fprintf(w, "  %-4s %-24s gossip %-21s pid %d\n", n.name, n.api, n.gossip, n.cmd.Process.Pid)
	}
	first, last := lc.nodes[0].api, lc.nodes[len(lc.nodes)-1].api
	fmt.Fprintf(w, `status page: %s/ in a browser
try:
  curl -s -XPOST -H 'Content-Type: application/json' %s/v1/scopes/default/join -d '{"group":"/svc/db","member":"db-1"}'
  curl -s '%s/v1/scopes/default/members?name=/svc/db'
  curl -s %s/v1/nodes
Ctrl-C stops every node.
`, first, first, last, last)
}

// stop asks every running node to leave (SIGTERM), all at once, and kills
// those still running after localStopTimeout. It returns once every
// process has ended.
func (lc *localCluster) stop(w io.Writer) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, n := range lc.nodes {
		wg.Go(func() {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.waited:
			case <-time.After(localStopTimeout):
				_ = n.cmd.Process.Kill()
				<-n.waited
			}
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(w, "%s stopped: %v\n", n.name, exitStatus(n.cmd))
		})
	}
	wg.Wait()
}

// exitStatus describes how a process that was waited for ended.
func exitStatus(cmd *exec.Cmd) string {
	st := cmd.ProcessState
	if st == nil {
		return "still running"
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return "exit status " + strconv.Itoa(st.ExitCode())
}

// lineWriter writes whole lines to w, one writer at a time, so that the
// nodes' logs interleave by line.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) writeLine(prefix string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(append(append(buf, prefix...), line...), '\n')
	_, _ = l.w.Write(buf)
}

// nodeLog is a node's stderr: it passes each line of at least the shown
// level on with the node's name in front, and hands the fields of the
// "cpgd agent started" line (http=, gossip=) to started.
type nodeLog struct {
	prefix  string
	out     *lineWriter
	shown   slog.Level
	started chan<- map[string]string
	partial []byte
}

func (l *nodeLog) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := l.partial[:i]
		if lineLevel(line) >= l.shown {
			l.out.writeLine(l.prefix, line)
		}
		if l.started != nil && bytes.Contains(line, []byte(`msg="cpgd agent started"`)) {
			kv := make(map[string]string)
			for _, f := range strings.Fields(string(line)) {
				if k, v, ok := strings.Cut(f, "="); ok {
					kv[k] = v
				}
			}
			l.started <- kv
			l.started = nil
		}
		l.partial = l.partial[i+1:]
	}
	// A line is short; keep no more than a runaway one's start.
	if len(l.partial) > 64<<10 {
		l.out.writeLine(l.prefix, l.partial)
		l.partial = l.partial[:0]
	}
	return len(p), nil
}

// lineLevel is the level of one of the agent's log lines (slog's text
// format); a line without one (a panic's trace) is an error.
func lineLevel(line []byte) slog.Level {
	_, rest, ok := bytes.Cut(line, []byte(" level="))
	if !ok {
		return slog.LevelError
	}
	word, _, _ := bytes.Cut(rest, []byte(" "))
	var level slog.Level
	if err := level.UnmarshalText(word); err != nil {
		return slog.LevelError
	}
	return level
}
