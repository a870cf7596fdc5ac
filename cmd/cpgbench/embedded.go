package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/cpggo/cpg/internal/proctest"
	"github.com/cpggo/cpg/membership"
	"github.com/cpggo/cpg/registry"
)

// embeddedNodeEnv, when set, makes cpgbench run as one of w2's embedded
// nodes instead: a registry node in a Go program, as each of pg's nodes is
// an Erlang node calling pg itself. Its value is the memberlist address
// to join, or empty for the first node. The node answers each job read
// from stdin (an embeddedJob) with one line of JSON on stdout (an
// embeddedReply); the first line it writes is its memberlist address.
const embeddedNodeEnv = "CPGBENCH_EMBEDDED_JOIN"

// embeddedNameEnv is the embedded node's name in the cluster.
const embeddedNameEnv = "CPGBENCH_EMBEDDED_NAME"

// joinerName is the name of w2's joining node when it is embedded.
const joinerName = "a"

// embeddedJob is one request to an embedded node:
//
//   - "joins": make the joins of Variant into Scope, one at a time, and
//     answer when they are made; "times" then answers when each was
//     called and returned (apart, so that no node's answer is encoded
//     while the others are still applying the joins);
//   - "ready": join a ready member of Scope (so that the scope exists
//     here), and answer once the scope's ready group holds Joins members
//     (one per node, as pg's benchmark waits for before each trial);
//   - "watch": watch Scope's groups matching Pattern, and answer once the
//     watch is open;
//   - "wait": answer once the watch has shown Joins joins (or overflowed,
//     or 60 s passed); "collect" then answers when this node applied
//     each;
//   - "alive": answer once Joins nodes (this one included) are alive here;
//   - "grafts": answer with the grafts this node has sent.
type embeddedJob struct {
	Op      string `json:"op"`
	Scope   string `json:"scope,omitempty"`
	Variant string `json:"variant,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	Joins   int    `json:"joins,omitempty"`
}

// embeddedReply answers one embeddedJob; times are Unix nanoseconds.
type embeddedReply struct {
	Gossip   string           `json:"gossip,omitempty"`
	Called   []int64          `json:"called,omitempty"`
	Returned []int64          `json:"returned,omitempty"`
	Applied  map[string]int64 `json:"applied,omitempty"`
	// LastRead is when the watch's reader took the last join from it.
	LastRead int64  `json:"last_read,omitempty"`
	Overflow bool   `json:"overflow,omitempty"`
	Grafts   uint64 `json:"grafts,omitempty"`
	Err      string `json:"err,omitempty"`
}

var gossipProfiles = map[string]func() membership.GossipConfig{
	"lan":      membership.DefaultGossipConfig,
	"loopback": membership.LoopbackGossipConfig,
}

// runEmbeddedNode is an embedded node's process.
func runEmbeddedNode(join, name string) error {
	key, err := base64.StdEncoding.DecodeString(proctest.ClusterKey)
	if err != nil {
		return err
	}
	gossip, ok := gossipProfiles[*profile]
	if !ok {
		return fmt.Errorf("-profile %q: want lan or loopback", *profile)
	}
	cc := &registry.ClusterConfig{
		Bind: "127.0.0.1:0", Gossip: "127.0.0.1:0", Key: key,
		Membership: membership.NodeConfig{Gossip: gossip()},
	}
	if join != "" {
		cc.Join = []string{join}
	}
	node, err := registry.New(registry.Config{Name: name, Cluster: cc})
	if err != nil {
		return err
	}
	defer node.Close()
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(embeddedReply{Gossip: node.GossipAddr()}); err != nil {
		return err
	}
	w := &embeddedState{}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var job embeddedJob
		if err := json.Unmarshal(in.Bytes(), &job); err != nil {
			return fmt.Errorf("job %q: %w", in.Text(), err)
		}
		reply, err := runEmbeddedJob(node, w, job)
		if err != nil {
			reply.Err = err.Error()
		}
		if err := out.Encode(reply); err != nil {
			return err
		}
	}
	w.stop()
	return in.Err()
}

func runEmbeddedJob(node *registry.Node, w *embeddedState, job embeddedJob) (embeddedReply, error) {
	switch job.Op {
	case "joins":
		var err error
		w.times, err = embeddedJoins(node, job)
		return embeddedReply{}, err
	case "times":
		return w.times, nil
	case "ready":
		return embeddedReply{}, readyJoin(node, job.Scope, job.Joins)
	case "watch":
		return embeddedReply{}, w.start(node, job)
	case "wait":
		return embeddedReply{}, w.wait()
	case "collect":
		return w.collect()
	case "alive":
		return embeddedReply{}, waitAlive(node, job.Joins)
	case "grafts":
		var r embeddedReply
		if c := node.Stats().Cluster; c != nil {
			r.Grafts = c.Broadcast.GraftsSent
		}
		return r, nil
	}
	return embeddedReply{}, fmt.Errorf("no job %q", job.Op)
}

func embeddedJoins(node *registry.Node, job embeddedJob) (embeddedReply, error) {
	v, ok := variantNamed(job.Variant)
	if !ok {
		return embeddedReply{}, fmt.Errorf("no variant %q", job.Variant)
	}
	s, err := node.Scope(job.Scope)
	if err != nil {
		return embeddedReply{}, err
	}
	// The names are made before the clock starts, as pg's benchmark
	// spawns its members and builds its group names first: the trial
	// times the registry, not the formatting of its arguments.
	groups, members := make([]string, v.joins), make([]string, v.joins)
	for i := range v.joins {
		groups[i], members[i] = v.group(i), fmt.Sprintf("m%d", i)
	}
	t := embeddedReply{Called: make([]int64, v.joins), Returned: make([]int64, v.joins)}
	begin := time.Now()
	for i := range v.joins {
		if v.pace > 0 {
			time.Sleep(time.Until(begin.Add(time.Duration(i) * v.pace)))
		}
		t.Called[i] = time.Now().UnixNano()
		if err := s.Join(groups[i], members[i], nil); err != nil {
			return t, err
		}
		t.Returned[i] = time.Now().UnixNano()
	}
	return t, nil
}

func waitAlive(node *registry.Node, want int) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		alive := 0
		var others []string
		for _, n := range node.Nodes() {
			if n.Status == membership.StatusAlive {
				alive++
			} else {
				others = append(others, fmt.Sprintf("%s %v", n.Name, n.Status))
			}
		}
		if alive >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d nodes alive after 20 s (not alive: %v)", alive, want, others)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readyJoin joins this node's ready member of scope and waits until the
// ready group has one member per node.
func readyJoin(node *registry.Node, scope string, nodes int) error {
	s, err := node.Scope(scope)
	if err != nil {
		return err
	}
	if err := s.Join(readyGroup, "ready-"+node.Name(), nil); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, err := s.Members(readyGroup)
		if err != nil {
			return err
		}
		n := len(g.Members)
		if n >= nodes {
			return waitLinked(node, nodes)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d ready members after 10 s", n, nodes)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitLinked returns once the node holds its share of overlay links
// (overlayLinks): the trial then measures a formed cluster, as pg's
// benchmark connects every node to every other before it starts.
func waitLinked(node *registry.Node, nodes int) error {
	want := overlayLinks(nodes)
	deadline := time.Now().Add(20 * time.Second)
	for {
		active := len(node.Overlay().Active)
		if active >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d overlay links after 20 s", active, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// embeddedState is an embedded node's state between jobs. On an
// observer, a goroutine takes each event from the registry's watch and
// keeps it with the time the node applied it, as pg's benchmark has a
// process on each observer log its notifications, and hands them over once
// asked. On the joiner, times holds the last joins' times until asked.
type embeddedState struct {
	watch *registry.Watch
	done  chan watchLog
	got   *watchLog
	times embeddedReply
}

// watchLog is what an observer's reader took from its watch.
type watchLog struct {
	stamps   []stamp
	lastRead int64
	overflow bool
}

// stamp is a join the watch showed and when this node applied it.
type stamp struct {
	member  string
	applied int64
}

func (w *embeddedState) start(node *registry.Node, job embeddedJob) error {
	if w.watch != nil {
		return errors.New("a watch is already open")
	}
	s, err := node.Scope(job.Scope)
	if err != nil {
		return err
	}
	// The watch's default channel, as a program would open it: the
	// scope's journal (4,096 changes by default) holds a burst the reader
	// has not taken yet, so a descheduled reader does not overflow.
	if w.watch, err = s.Watch(job.Pattern, 0); err != nil {
		return err
	}
	w.done = make(chan watchLog, 1)
	go func(events <-chan registry.Event, joins int) {
		// The reader only appends to a log while the joins arrive, as
		// pg's watcher prepends to a list; the log is indexed when the
		// parent collects it, once every observer has all the joins (as
		// pg's watcher reverses its list only when asked), so that the
		// measuring costs the nodes still at work as little as it costs
		// pg's.
		r := watchLog{stamps: make([]stamp, 0, joins)}
		for ev := range events {
			switch ev.Kind {
			case registry.EventOverflow:
				r.overflow = true
			case registry.EventJoin:
				r.stamps = append(r.stamps, stamp{ev.Member.ID, ev.Applied.UnixNano()})
			}
			if r.overflow || len(r.stamps) == joins {
				break
			}
		}
		r.lastRead = time.Now().UnixNano()
		w.done <- r
	}(w.watch.Events(), job.Joins)
	return nil
}

func (w *embeddedState) wait() error {
	if w.watch == nil {
		return errors.New("no watch is open")
	}
	defer w.stop()
	select {
	case r := <-w.done:
		w.got = &r
		return nil
	case <-time.After(60 * time.Second):
		return errors.New("the joins did not all arrive within 60 s")
	}
}

func (w *embeddedState) collect() (embeddedReply, error) {
	if w.got == nil {
		return embeddedReply{}, errors.New("collect before wait")
	}
	log := *w.got
	w.got = nil
	r := embeddedReply{LastRead: log.lastRead, Overflow: log.overflow, Applied: make(map[string]int64, len(log.stamps))}
	for _, st := range log.stamps {
		r.Applied[st.member] = st.applied
	}
	return r, nil
}

func (w *embeddedState) stop() {
	if w.watch != nil {
		w.watch.Close()
		w.watch = nil
	}
}

// embeddedNode is the parent's handle on an embedded node's process.
type embeddedNode struct {
	name   string
	gossip string
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *json.Decoder
}

// startEmbeddedNode starts an embedded node that joins the cluster at the
// memberlist address join (none: it is the first node).
func startEmbeddedNode(name, join string) (*embeddedNode, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-profile", *profile)
	cmd.Env = append(os.Environ(), embeddedNodeEnv+"="+join, embeddedNameEnv+"="+name)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e := &embeddedNode{name: name, cmd: cmd, in: in, out: json.NewDecoder(out)}
	var hello embeddedReply
	if err := e.out.Decode(&hello); err != nil {
		e.close()
		return nil, fmt.Errorf("embedded node %s: %w", name, err)
	}
	if hello.Err != "" || hello.Gossip == "" {
		e.close()
		return nil, fmt.Errorf("embedded node %s did not start: %s", name, hello.Err)
	}
	e.gossip = hello.Gossip
	return e, nil
}

// ask sends one job and reads its answer.
func (e *embeddedNode) ask(job embeddedJob) (embeddedReply, error) {
	if err := e.send(job); err != nil {
		return embeddedReply{}, err
	}
	return e.answer()
}

func (e *embeddedNode) send(job embeddedJob) error {
	if err := json.NewEncoder(e.in).Encode(job); err != nil {
		return fmt.Errorf("embedded node %s: %w", e.name, err)
	}
	return nil
}

func (e *embeddedNode) answer() (embeddedReply, error) {
	var r embeddedReply
	if err := e.out.Decode(&r); err != nil {
		return r, fmt.Errorf("embedded node %s's answer: %w", e.name, err)
	}
	if r.Err != "" {
		return r, fmt.Errorf("embedded node %s: %s", e.name, r.Err)
	}
	return r, nil
}

// ready joins the node's ready member of scope and returns once it sees
// nodes of them.
func (e *embeddedNode) ready(scope string, nodes int) error {
	_, err := e.ask(embeddedJob{Op: "ready", Scope: scope, Joins: nodes})
	return err
}

// joins runs one variant on the node; times then returns when its joins
// were called and returned.
func (e *embeddedNode) joins(scope string, v joinVariant) error {
	_, err := e.ask(embeddedJob{Op: "joins", Scope: scope, Variant: v.name})
	return err
}

func (e *embeddedNode) times() (called, returned []time.Time, err error) {
	t, err := e.ask(embeddedJob{Op: "times"})
	if err != nil {
		return nil, nil, err
	}
	for i := range t.Called {
		called = append(called, time.Unix(0, t.Called[i]))
		returned = append(returned, time.Unix(0, t.Returned[i]))
	}
	return called, returned, nil
}

// close ends the node: it leaves the cluster when its stdin ends.
func (e *embeddedNode) close() {
	_ = e.in.Close()
	done := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
	}
}

// waitAllAlive returns once every node, agent or embedded, lists n nodes
// as alive.
func waitAllAlive(agents []*proctest.Node, embedded []*embeddedNode, n int) error {
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range agents {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := a.NodeStatus(ctx)
			cancel()
			alive := 0
			for _, s := range st {
				if s == "alive" {
					alive++
				}
			}
			if err == nil && alive >= n {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s sees %d of %d nodes alive after 20 s", a.Name, alive, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, e := range embedded {
		if _, err := e.ask(embeddedJob{Op: "alive", Joins: n}); err != nil {
			return err
		}
	}
	return nil
}

// observerName is the name of w2's i-th embedded observer.
func observerName(i int) string { return fmt.Sprintf("o%d", i+1) }
