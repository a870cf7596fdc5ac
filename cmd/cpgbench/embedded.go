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

// embeddedNodeEnv, when set to a memberlist address, makes cpgbench run as
// w2's joining node instead: a registry node embedded in a Go program, as
// pg's node A is an Erlang node calling pg:join itself. It joins the
// cluster at that address, answers each job read from stdin (a joinJob)
// by making the joins through the Go API, and writes their times to
// stdout (a joinTimes).
const embeddedNodeEnv = "CPGBENCH_EMBEDDED_JOIN"

// embeddedNodeName is the joining node's name in the cluster.
const embeddedNodeName = "a"

type joinJob struct {
	Scope   string `json:"scope"`
	Variant string `json:"variant"`
}

// joinTimes are the Unix nanoseconds at which each join was called and
// returned.
type joinTimes struct {
	Called   []int64 `json:"called"`
	Returned []int64 `json:"returned"`
	Err      string  `json:"err,omitempty"`
}

var gossipProfiles = map[string]func() membership.GossipConfig{
	"lan":      membership.DefaultGossipConfig,
	"loopback": membership.LoopbackGossipConfig,
}

// runEmbeddedNode is the joining node's process.
func runEmbeddedNode(join string) error {
	key, err := base64.StdEncoding.DecodeString(proctest.ClusterKey)
	if err != nil {
		return err
	}
	gossip, ok := gossipProfiles[*profile]
	if !ok {
		return fmt.Errorf("-profile %q: want lan or loopback", *profile)
	}
	node, err := registry.New(registry.Config{Name: embeddedNodeName, Cluster: &registry.ClusterConfig{
		Bind: "127.0.0.1:0", Gossip: "127.0.0.1:0", Join: []string{join}, Key: key,
		Membership: membership.NodeConfig{Gossip: gossip()},
	}})
	if err != nil {
		return err
	}
	defer node.Close()
	out := json.NewEncoder(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var job joinJob
		if err := json.Unmarshal(in.Bytes(), &job); err != nil {
			return fmt.Errorf("job %q: %w", in.Text(), err)
		}
		times, err := embeddedJoins(node, job)
		if err != nil {
			times.Err = err.Error()
		}
		if err := out.Encode(times); err != nil {
			return err
		}
	}
	return in.Err()
}

func embeddedJoins(node *registry.Node, job joinJob) (joinTimes, error) {
	v, ok := variantNamed(job.Variant)
	if !ok {
		return joinTimes{}, fmt.Errorf("no variant %q", job.Variant)
	}
	s, err := node.Scope(job.Scope)
	if err != nil {
		return joinTimes{}, err
	}
	t := joinTimes{Called: make([]int64, v.joins), Returned: make([]int64, v.joins)}
	begin := time.Now()
	for i := range v.joins {
		if v.pace > 0 {
			time.Sleep(time.Until(begin.Add(time.Duration(i) * v.pace)))
		}
		t.Called[i] = time.Now().UnixNano()
		if err := s.Join(v.group(i), fmt.Sprintf("m%d", i), nil); err != nil {
			return t, err
		}
		t.Returned[i] = time.Now().UnixNano()
	}
	return t, nil
}

// embeddedNode is the parent's handle on a joining node's process.
type embeddedNode struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
}

// startEmbeddedNode starts the joining node, joined to c, and returns once
// every node of c lists it as alive.
func startEmbeddedNode(c *proctest.Cluster) (*embeddedNode, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-profile", *profile)
	cmd.Env = append(os.Environ(), embeddedNodeEnv+"="+c.Nodes[0].Gossip)
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
	e := &embeddedNode{cmd: cmd, in: in, out: json.NewDecoder(out)}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := n.NodeStatus(ctx)
			cancel()
			if err == nil && st[embeddedNodeName] == "alive" {
				break
			}
			if time.Now().After(deadline) {
				e.close()
				return nil, fmt.Errorf("the joining node is not alive on %s after 20 s", n.Name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return e, nil
}

// joins runs one variant on the joining node and returns the times of its
// joins.
func (e *embeddedNode) joins(scope string, v joinVariant) (called, returned []time.Time, err error) {
	if err := json.NewEncoder(e.in).Encode(joinJob{Scope: scope, Variant: v.name}); err != nil {
		return nil, nil, err
	}
	var t joinTimes
	if err := e.out.Decode(&t); err != nil {
		return nil, nil, fmt.Errorf("the joining node's answer: %w", err)
	}
	if t.Err != "" {
		return nil, nil, errors.New(t.Err)
	}
	for i := range t.Called {
		called = append(called, time.Unix(0, t.Called[i]))
		returned = append(returned, time.Unix(0, t.Returned[i]))
	}
	return called, returned, nil
}

// close ends the joining node: it leaves the cluster when its stdin ends.
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
