package membership

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// blackholeNet puts each of two in-process nodes' overlay sockets in a
// network namespace of its own, joined by veth links to a bridge, so that
// the test can cut the path between them the way a switch failing does:
// packets (SYNs included) are lost, not refused, and each kernel's TCP
// retransmits and backs off as it would on a real network. Cutting moves
// one node's link to a bridge of its own; healing moves it back. Memberlist
// stays on the loopback of the test's own namespace: the cuts here are
// shorter than any of its timeouts.
type blackholeNet struct {
	prefix string
	nodes  int
}

func (b *blackholeNet) ns(i int) string     { return fmt.Sprintf("%sn%d", b.prefix, i) }
func (b *blackholeNet) veth(i int) string   { return fmt.Sprintf("%sv%d", b.prefix, i) }
func (b *blackholeNet) bridge(k int) string { return fmt.Sprintf("%sb%d", b.prefix, k) }
func (b *blackholeNet) addr(i int) string   { return fmt.Sprintf("10.79.0.%d", i+1) }

func runIP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newBlackholeNet makes the namespaces, or skips the test where this
// process may not (not root, no ip command).
func newBlackholeNet(t *testing.T, nodes int) *blackholeNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespaces need the ip command")
	}
	b := &blackholeNet{prefix: fmt.Sprintf("cmr%x", os.Getpid()&0xfffff), nodes: nodes}
	t.Cleanup(b.tearDown)
	steps := [][]string{
		{"link", "add", b.bridge(0), "type", "bridge"},
		{"link", "set", b.bridge(0), "up"},
		{"link", "add", b.bridge(1), "type", "bridge"},
		{"link", "set", b.bridge(1), "up"},
	}
	for i := range nodes {
		steps = append(steps,
			[]string{"netns", "add", b.ns(i)},
			[]string{"-n", b.ns(i), "link", "set", "lo", "up"},
			[]string{"link", "add", b.veth(i), "type", "veth", "peer", "name", "eth0", "netns", b.ns(i)},
			[]string{"link", "set", b.veth(i), "master", b.bridge(0), "up"},
			[]string{"-n", b.ns(i), "addr", "add", b.addr(i) + "/24", "dev", "eth0"},
			[]string{"-n", b.ns(i), "link", "set", "eth0", "up"},
		)
	}
	for k, s := range steps {
		if err := runIP(s...); err != nil {
			if k == 0 {
				t.Skipf("cannot make links here: %v", err)
			}
			t.Fatal(err)
		}
	}
	return b
}

func (b *blackholeNet) tearDown() {
	for i := range b.nodes {
		_ = runIP("link", "del", b.veth(i))
		_ = runIP("netns", "del", b.ns(i))
	}
	_ = runIP("link", "del", b.bridge(0))
	_ = runIP("link", "del", b.bridge(1))
}

// cut moves node i's link to the empty bridge; heal moves it back.
func (b *blackholeNet) cut(i int) error {
	return runIP("link", "set", b.veth(i), "master", b.bridge(1))
}
func (b *blackholeNet) heal(i int) error {
	return runIP("link", "set", b.veth(i), "master", b.bridge(0))
}

// inNamespace runs f on a thread switched into namespace name, so that the
// sockets f creates belong to it (a socket keeps its namespace for life).
func inNamespace(name string, f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", name, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
		runtime.UnlockOSThread()
	} // else the thread stays locked and ends with this goroutine
	return ferr
}

// place makes node i of the network open its overlay sockets in its
// namespace.
func (b *blackholeNet) place(cfg *NodeConfig, i int) {
	ns := b.ns(i)
	cfg.BindAddr = b.addr(i) + ":0"
	cfg.Listen = func(addr string) (ln net.Listener, err error) {
		err = inNamespace(ns, func() error {
			var lerr error
			ln, lerr = net.Listen("tcp", addr)
			return lerr
		})
		return ln, err
	}
	cfg.Dial = func(ctx context.Context, addr string) (conn net.Conn, err error) {
		err = inNamespace(ns, func() error {
			var d net.Dialer
			var derr error
			conn, derr = d.DialContext(ctx, "tcp", addr)
			return derr
		})
		return conn, err
	}
}

// eventLog records a node's events with the time each was taken.
type eventLog struct {
	mu     sync.Mutex
	events []timedEvent
}

type timedEvent struct {
	at time.Time
	ev Event
}

func (l *eventLog) consume(n *Node) {
	for ev := range n.Events() {
		l.mu.Lock()
		l.events = append(l.events, timedEvent{time.Now(), ev})
		l.mu.Unlock()
	}
}

// firstSince returns when the first event after since matching match was
// taken.
func (l *eventLog) firstSince(since time.Time, match func(Event) bool) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if !e.at.Before(since) && match(e.ev) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

func (l *eventLog) payloads(prefix string) map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := make(map[string]time.Time)
	for _, e := range l.events {
		if e.ev.Type == Message && strings.HasPrefix(string(e.ev.Payload), prefix) {
			got[string(e.ev.Payload)] = e.at
		}
	}
	return got
}

// A link cut for half a second, with payloads sent during the cut, is
// usable again within 100 ms of the network's return: the payloads sent
// during the cut arrive by then, or the link was replaced and the receiver
// told so (LinkDown then LinkUp, so that it compares state with the
// sender), and payloads sent after the heal go through at once. Without
// the revival, what was sent during the cut waits for TCP's backed-off
// retransmission timer: a payload sent 50 ms into the cut is retransmitted
// about 250 and 650 ms into it, 150 ms after the heal.
func TestStalledLinkRevivesSoonAfterHeal(t *testing.T) {
	if testing.Short() {
		t.Skip("a real half-second network cut")
	}
	network := newBlackholeNet(t, 2)
	acfg, bcfg := testNodeConfig("a"), testNodeConfig("b")
	// Production's keepalive: its timeout (1.5 s) is longer than the cut,
	// so the link is not dropped and redialed; the revival must notice.
	acfg.KeepAlive, bcfg.KeepAlive = defaultKeepAlive, defaultKeepAlive
	network.place(&acfg, 0)
	network.place(&bcfg, 1)
	a, b := startNode(t, acfg), startNode(t, bcfg)
	var aLog, bLog eventLog
	go aLog.consume(a)
	go bLog.consume(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Join(ctx, a.GossipAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a and b linked", func() bool { return len(a.Active()) == 1 && len(b.Active()) == 1 })
	for i := range 20 {
		if err := a.Send("b", fmt.Appendf(nil, "warm-%d", i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, 5*time.Second, "warm-up payloads delivered", func() bool { return len(bLog.payloads("warm-")) == 20 })

	cutAt := time.Now()
	if err := network.cut(0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	const during = 10
	for i := range during {
		if err := a.Send("b", fmt.Appendf(nil, "cut-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Until(cutAt.Add(500 * time.Millisecond)))
	// The path may be back before the command that heals it returns (on
	// a loaded machine, tens of ms before): a reset is looked for from
	// the command's start, and its delay counted from its end.
	healing := time.Now()
	if err := network.heal(0); err != nil {
		t.Fatal(err)
	}
	healedAt := time.Now()

	// Usable again: every cut-time payload delivered, or b told the link
	// was replaced (after which a's Send goes over the new one).
	var usable time.Time
	reset := func(ev Event) bool { return ev.Type == LinkUp && ev.Peer.Name == "a" }
	waitFor(t, 5*time.Second, "the cut-time payloads delivered, or the link reset", func() bool {
		got := bLog.payloads("cut-")
		if len(got) == during {
			for _, at := range got {
				if at.After(usable) {
					usable = at
				}
			}
			return true
		}
		if at, ok := bLog.firstSince(healing, reset); ok {
			usable = at
			return true
		}
		return false
	})
	if took := usable.Sub(healedAt); took > 100*time.Millisecond {
		t.Errorf("the link was usable again %v after the heal, want within 100ms", took)
	}
	// A payload a sends while b's replacement of the link is still under
	// way may go over the old connection and be lost; both sides are
	// then told (LinkDown, LinkUp), as the registry is. So a sends every
	// 10 ms until one arrives, and the first must arrive within 100 ms
	// of the first send.
	sent := time.Now()
	attempts := 0
	waitFor(t, 5*time.Second, "a payload sent after the heal delivered", func() bool {
		if len(bLog.payloads("after-")) > 0 {
			return true
		}
		if a.Send("b", fmt.Appendf(nil, "after-%d", attempts)) == nil {
			attempts++
		}
		return false
	})
	var first time.Time
	for _, at := range bLog.payloads("after-") {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if took := first.Sub(sent); took > 100*time.Millisecond {
		t.Errorf("a payload sent after the heal arrived %v after the first try, want within 100ms", took)
	}
	if len(a.Active()) != 1 || len(b.Active()) != 1 {
		t.Errorf("views after the heal: a %v, b %v; want each other", names(a.Active()), names(b.Active()))
	}
	t.Logf("usable %v after the heal (cut-time payloads delivered: %d of %d); a payload after it arrived %v after the first of %d tries",
		usable.Sub(healedAt), len(bLog.payloads("cut-")), during, first.Sub(sent), attempts)
}
