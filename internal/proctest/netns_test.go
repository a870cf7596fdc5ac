package proctest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// What a killed test binary left (its process id no longer exists) goes
// when the next network is made; what a live process owns stays.
func TestOrphanedNetworksAreSwept(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	// 0xfffffe is above Linux's largest process id (4194304).
	dead, live := "cptfffffe01n0", "cpt000001"+"01c0" // pid 1 is always there
	if err := ip("netns", "add", dead); err != nil {
		t.Skip("cannot make namespaces here:", err)
	}
	t.Cleanup(func() { _ = ip("netns", "del", dead) })
	if err := ip("link", "add", live, "type", "bridge"); err != nil {
		t.Skip("cannot make links here:", err)
	}
	t.Cleanup(func() { _ = ip("link", "del", live) })

	sweepOrphans()

	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), dead) {
		t.Errorf("namespace %s of a gone process is still there", dead)
	}
	if err := ip("link", "show", live); err != nil {
		t.Errorf("link %s of a live process was removed: %v", live, err)
	}
}
