package proctest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config describes a cluster to start.
type Config struct {
	// Nodes is how many cpgd processes to start (at least 1).
	Nodes int
	// Isolated puts every node in a network namespace of its own, so the
	// cluster can be partitioned. Start returns ErrNoNamespaces where that
	// is not possible.
	Isolated bool
	// GossipProfile is cpgd's --gossip-profile: "lan" (default,
	// memberlist's LAN timings) or "loopback".
	GossipProfile string
	// LogDir receives each node's log as <name>.log (default: a new
	// temporary directory, removed by Close).
	LogDir string
	// DataDir holds each node's data dir as <name>/ (default: a new
	// temporary directory, removed by Close), so a restarted node finds
	// its durable registrations again.
	DataDir string
	// Args are extra cpgd flags given to every node.
	Args []string
	// StartTimeout bounds each node's start (default 20 s).
	StartTimeout time.Duration
}

// Cluster is a set of running cpgd processes that joined each other.
type Cluster struct {
	Nodes []*Node

	cfg      Config
	net      *network // nil unless isolated
	tempLog  bool
	tempData bool
}

// Node is one cpgd process.
type Node struct {
	Name string
	// API is the base URL of the node's HTTP API.
	API string
	// Gossip is its memberlist address.
	Gossip string
	Client

	cmd     *exec.Cmd
	waited  chan struct{}
	mu      sync.Mutex
	stopped bool
	logPath string
	index   int // in Cluster.Nodes
}

// ClusterKey is the key every node of a test cluster shares (base64 of 16
// bytes), so the overlay's authenticated handshake and memberlist's
// encryption are exercised as in production. A node a test runs itself
// (not a cpgd process) needs it to join.
const ClusterKey = "Y3BnLXByb2N0ZXN0LWtleQ=="

// Start builds cpgd if needed and starts cfg.Nodes agents: the first
// founds the cluster, the others join it through the first. It returns
// once every node lists every other as alive.
func Start(cfg Config) (*Cluster, error) {
	if cfg.Nodes < 1 {
		return nil, errors.New("proctest: a cluster needs at least one node")
	}
	if cfg.GossipProfile == "" {
		cfg.GossipProfile = "lan"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 20 * time.Second
	}
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg}
	if cfg.LogDir == "" {
		if c.cfg.LogDir, err = os.MkdirTemp("", "cpgd-logs-"); err != nil {
			return nil, err
		}
		c.tempLog = true
	}
	if cfg.DataDir == "" {
		if c.cfg.DataDir, err = os.MkdirTemp("", "cpgd-data-"); err != nil {
			c.Close()
			return nil, err
		}
		c.tempData = true
	}
	if cfg.Isolated {
		if c.net, err = newNetwork(cfg.Nodes); err != nil {
			c.Close()
			return nil, err
		}
	}
	for i := range cfg.Nodes {
		join := ""
		if i > 0 {
			join = c.Nodes[0].Gossip
		}
		n, err := c.startNode(bin, i, join, false)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	if err := c.WaitAllAlive(c.Nodes, cfg.StartTimeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// startNode starts node i, joining the cluster through join (none: it
// founds one). A restart appends to the node's log instead of starting it
// afresh.
func (c *Cluster) startNode(bin string, i int, join string, restart bool) (*Node, error) {
	name := fmt.Sprintf("n%d", i+1)
	host, httpHost := "127.0.0.1", "127.0.0.1"
	if c.net != nil {
		host, httpHost = c.net.clusterIP(i), c.net.controlIP(i)
	}
	args := []string{"agent", "--name", name,
		"--http", httpHost + ":0", "--bind", host + ":0", "--gossip", host + ":0",
		"--cluster-key", ClusterKey, "--gossip-profile", c.cfg.GossipProfile,
		"--data-dir", filepath.Join(c.cfg.DataDir, name)}
	if join != "" {
		args = append(args, "--join", join)
	}
	args = append(args, c.cfg.Args...)
	var cmd *exec.Cmd
	if c.net != nil {
		// ip netns exec enters the namespace and execs cpgd: the pid it
		// starts is cpgd's, so signals reach cpgd itself.
		cmd = exec.Command("ip", append([]string{"netns", "exec", c.net.namespace(i), bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	// The agents must not outlive this process, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logPath := filepath.Join(c.cfg.LogDir, name+".log")
	logFlags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if restart {
		logFlags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	logFile, err := os.OpenFile(logPath, logFlags, 0o644)
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("proctest: start %s: %w", name, err)
	}
	n := &Node{Name: name, index: i, cmd: cmd, waited: make(chan struct{}), logPath: logPath}
	started := make(chan map[string]string, 1)
	go copyLog(stderr, logFile, started)
	go func() { _ = cmd.Wait(); close(n.waited) }()
	select {
	case kv := <-started:
		n.API, n.Gossip = kv["http"], kv["gossip"]
		n.Client = newClient(n.API)
		return n, nil
	case <-n.waited:
		return nil, fmt.Errorf("proctest: %s exited at start: %s", name, n.LogTail())
	case <-time.After(c.cfg.StartTimeout):
		_ = n.Kill()
		return nil, fmt.Errorf("proctest: %s did not start within %v: %s", name, c.cfg.StartTimeout, n.LogTail())
	}
}

// copyLog copies a node's log to its file, and hands the fields of its
// "cpgd agent started" line to started.
func copyLog(r io.Reader, w *os.File, started chan<- map[string]string) {
	defer w.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(w, line)
		if started != nil && strings.Contains(line, `msg="cpgd agent started"`) {
			kv := make(map[string]string)
			for _, f := range strings.Fields(line) {
				if k, v, ok := strings.Cut(f, "="); ok {
					kv[k] = v
				}
			}
			started <- kv
			started = nil
		}
	}
}

// LogTail returns the end of the node's log, for failure messages.
func (n *Node) LogTail() string {
	data, _ := os.ReadFile(n.logPath)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// Pid is the node's process id.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// Kill ends the process with SIGKILL (kill -9): its sockets close, it says
// goodbye to no one. It returns once the process is gone.
func (n *Node) Kill() error {
	err := n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.waited
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// Stop freezes the process with SIGSTOP: its sockets stay open and
// nothing answers on them, like a hung host.
func (n *Node) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped = true
	return n.cmd.Process.Signal(syscall.SIGSTOP)
}

// Continue resumes a stopped process with SIGCONT.
func (n *Node) Continue() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped = false
	return n.cmd.Process.Signal(syscall.SIGCONT)
}

// Terminate asks the process to leave gracefully (SIGTERM) and waits up to
// timeout for it to exit; it returns the exit error (nil for status 0).
func (n *Node) Terminate(timeout time.Duration) error {
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-n.waited:
		if code := n.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("proctest: %s exited with status %d after SIGTERM", n.Name, code)
		}
		return nil
	case <-time.After(timeout):
		_ = n.Kill()
		return fmt.Errorf("proctest: %s still running %v after SIGTERM", n.Name, timeout)
	}
}

// Exited reports whether the process has ended.
func (n *Node) Exited() bool {
	select {
	case <-n.waited:
		return true
	default:
		return false
	}
}

// Partition cuts the cluster into the given sides, each a list of node
// indexes: nodes on different sides no longer reach each other; nodes in
// no side stay on the first. Only an isolated cluster can be partitioned.
func (c *Cluster) Partition(sides ...[]int) error {
	if c.net == nil {
		return errors.New("proctest: only an isolated cluster can be partitioned")
	}
	for k, side := range sides {
		for c.net.bridges <= k {
			if _, err := c.net.addBridge(); err != nil {
				return err
			}
		}
		for _, i := range side {
			if err := c.net.place(i, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// Heal puts every node back on one network.
func (c *Cluster) Heal() error {
	if c.net == nil {
		return errors.New("proctest: only an isolated cluster can be partitioned")
	}
	for i := range c.cfg.Nodes {
		if err := c.net.place(i, 0); err != nil {
			return err
		}
	}
	return nil
}

// Close kills every process still running and removes the network and the
// temporary logs.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		n.mu.Lock()
		if n.stopped {
			_ = n.cmd.Process.Signal(syscall.SIGCONT)
		}
		n.mu.Unlock()
		_ = n.Kill()
	}
	if c.net != nil {
		c.net.tearDown()
	}
	if c.tempLog {
		_ = os.RemoveAll(c.cfg.LogDir)
	}
	if c.tempData {
		_ = os.RemoveAll(c.cfg.DataDir)
	}
}

// Restart starts node n again, after it exited (Kill, Terminate), under
// the same name and on the same data dir, joining the cluster through a
// node still running. n then describes the new process (its API and
// gossip addresses change). It returns once the node serves its API.
func (c *Cluster) Restart(n *Node) error {
	if !n.Exited() {
		return fmt.Errorf("proctest: restart %s: it is still running", n.Name)
	}
	bin, err := Binary()
	if err != nil {
		return err
	}
	join := ""
	for _, o := range c.Nodes {
		if o != n && !o.Exited() {
			join = o.Gossip
			break
		}
	}
	fresh, err := c.startNode(bin, n.index, join, true)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.API, n.Gossip, n.Client = fresh.API, fresh.Gossip, fresh.Client
	n.cmd, n.waited, n.stopped = fresh.cmd, fresh.waited, false
	return nil
}

// Others returns the cluster's nodes but the given ones.
func (c *Cluster) Others(but ...*Node) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		skip := false
		for _, b := range but {
			skip = skip || n == b
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// WaitAllAlive waits until every one of nodes lists all of them as alive;
// its error says how each node saw the others at the end.
func (c *Cluster) WaitAllAlive(nodes []*Node, within time.Duration) error {
	err := waitFor(within, "every node lists the others alive", func(ctx context.Context) (bool, error) {
		for _, n := range nodes {
			status, err := n.NodeStatus(ctx)
			if err != nil {
				return false, err
			}
			for _, m := range nodes {
				if status[m.Name] != "alive" {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err == nil {
		return nil
	}
	views := make([]string, 0, len(nodes))
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		status, serr := n.NodeStatus(ctx)
		cancel()
		if serr != nil {
			views = append(views, fmt.Sprintf("%s: %v", n.Name, serr))
		} else {
			views = append(views, fmt.Sprintf("%s sees %v", n.Name, status))
		}
	}
	return fmt.Errorf("%w; %s", err, strings.Join(views, "; "))
}
