package proctest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
)

// ErrNoNamespaces is returned by Start for an isolated cluster when this
// process cannot create network namespaces and links (not root, no ip
// command, or no right to make links).
var ErrNoNamespaces = errors.New("proctest: network namespaces need root and the ip command (iproute2)")

// network is the namespaces, links and bridges of an isolated cluster.
// Names start with "cpt", the creating process's id and a per-process
// count (all in hex), so clusters of concurrent test binaries never meet,
// and what a killed test binary left behind is recognised and removed by
// the next one; interface names stay within the kernel's 15 bytes.
type network struct {
	prefix  string
	control string // 10.78.X: the control subnet's first three octets
	nodes   int
	bridges int // cluster bridges made so far: <prefix>b0, <prefix>b1, ...
}

// clusterIP is node i's address on the cluster bridge. The cluster subnet
// exists only inside the namespaces, so every cluster can use the same one.
func (nw *network) clusterIP(i int) string { return fmt.Sprintf("10.77.0.%d", i+1) }

// controlIP is node i's address on the control bridge, where this process
// reaches its API.
func (nw *network) controlIP(i int) string { return fmt.Sprintf("%s.%d", nw.control, i+1) }

func (nw *network) namespace(i int) string { return fmt.Sprintf("%sn%d", nw.prefix, i) }
func (nw *network) clusterLink(i int) string {
	return fmt.Sprintf("%sc%d", nw.prefix, i)
}
func (nw *network) controlLink(i int) string {
	return fmt.Sprintf("%st%d", nw.prefix, i)
}
func (nw *network) bridge(k int) string { return fmt.Sprintf("%sb%d", nw.prefix, k) }
func (nw *network) controlBridge() string {
	return nw.prefix + "bc"
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetwork creates the namespaces of n nodes, each linked to the cluster
// bridge and to the control bridge.
func newNetwork(n int) (*network, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNoNamespaces
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, ErrNoNamespaces
	}
	sweepOrphans()
	var b [1]byte
	_, _ = rand.Read(b[:])
	nw := &network{prefix: fmt.Sprintf("cpt%06x%02x", os.Getpid()&0xffffff, networks.Add(1)&0xff), nodes: n}
	// The control subnet is routed in this namespace: pick one no other
	// cluster uses.
	used, err := exec.Command("ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("proctest: ip addr show: %w", err)
	}
	for try := 0; ; try++ {
		nw.control = fmt.Sprintf("10.78.%d", 1+(int(b[0])+try)%250)
		if !strings.Contains(string(used), " "+nw.control+".") {
			break
		}
		if try == 250 {
			return nil, errors.New("proctest: every control subnet 10.78.*.0/24 is taken")
		}
	}
	if err := nw.setUp(); err != nil {
		nw.tearDown()
		return nil, err
	}
	return nw, nil
}

func (nw *network) setUp() error {
	// The first step fails where namespaces and links cannot be made at
	// all (a container without CAP_NET_ADMIN): a skip, not a failure.
	if _, err := nw.addBridge(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoNamespaces, err)
	}
	cb := nw.controlBridge()
	if err := ip("link", "add", cb, "type", "bridge"); err != nil {
		return err
	}
	if err := ip("addr", "add", nw.control+".254/24", "dev", cb); err != nil {
		return err
	}
	if err := ip("link", "set", cb, "up"); err != nil {
		return err
	}
	for i := range nw.nodes {
		ns := nw.namespace(i)
		ctl := nw.controlLink(i)
		steps := [][]string{
			{"netns", "add", ns},
			{"-n", ns, "link", "set", "lo", "up"},
			{"link", "add", nw.clusterLink(i), "type", "veth", "peer", "name", "cl0", "netns", ns},
			{"link", "set", nw.clusterLink(i), "master", nw.bridge(0), "up"},
			{"-n", ns, "addr", "add", nw.clusterIP(i) + "/24", "dev", "cl0"},
			{"-n", ns, "link", "set", "cl0", "up"},
			{"link", "add", ctl, "type", "veth", "peer", "name", "ct0", "netns", ns},
			{"link", "set", ctl, "master", cb, "up"},
			{"-n", ns, "addr", "add", nw.controlIP(i) + "/24", "dev", "ct0"},
			{"-n", ns, "link", "set", "ct0", "up"},
		}
		for _, s := range steps {
			if err := ip(s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// addBridge makes one more cluster bridge and returns its index.
func (nw *network) addBridge() (int, error) {
	k := nw.bridges
	name := nw.bridge(k)
	if err := ip("link", "add", name, "type", "bridge"); err != nil {
		return 0, err
	}
	nw.bridges++
	return k, ip("link", "set", name, "up")
}

// place attaches node i's cluster link to bridge k.
func (nw *network) place(i, k int) error {
	return ip("link", "set", nw.clusterLink(i), "master", nw.bridge(k))
}

// networks counts the networks this process made, for their names.
var networks atomic.Uint32

// orphanName matches the namespaces and links of a network; its first
// group is the id of the process that made it.
var orphanName = regexp.MustCompile(`^cpt([0-9a-f]{6})[0-9a-f]{2}[nbct][0-9]+`)

// sweepOrphans deletes the namespaces and links of networks whose process
// is gone (a test binary killed by its timeout cannot clean up).
func sweepOrphans() {
	orphan := func(name string) bool {
		m := orphanName.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, err := strconv.ParseInt(m[1], 16, 64)
		if err != nil || int(pid) == os.Getpid()&0xffffff {
			return false
		}
		_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
		return errors.Is(err, os.ErrNotExist)
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && orphan(f[0]) {
				_ = ip("netns", "del", f[0])
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			// "7: name@peer: <...>" or "7: name: <...>"
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if orphan(name) {
				_ = ip("link", "del", name)
			}
		}
	}
}

// tearDown deletes what setUp made. It deletes the links itself (each
// with its peer) rather than leave them to the namespaces' teardown, which
// the kernel may put off. It goes on past errors: a half-built network is
// torn down too.
func (nw *network) tearDown() {
	for i := range nw.nodes {
		_ = ip("link", "del", nw.clusterLink(i))
		_ = ip("link", "del", nw.controlLink(i))
		_ = ip("netns", "del", nw.namespace(i))
	}
	for k := range nw.bridges {
		_ = ip("link", "del", nw.bridge(k))
	}
	_ = ip("link", "del", nw.controlBridge())
}
