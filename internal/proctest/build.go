// Package proctest runs cpgd clusters of real OS processes for tests and
// benchmarks: it builds the binary once, starts N agents with their own
// ports, and can kill -9, SIGSTOP/SIGCONT and partition them.
//
// A partition needs the nodes in network namespaces (Config.Isolated): each
// node gets its own namespace with two links, one to a cluster bridge that
// carries the overlay and memberlist, one to a control bridge that carries
// only the HTTP API to this process. A partition moves nodes' cluster links
// to other bridges, which drops every packet between the sides (TCP and
// UDP alike, connections stay open and hang, as on a real network) while
// the API stays reachable; healing moves them back. A proxy could not do
// this: memberlist's UDP probes and the addresses nodes advertise to each
// other would all have to pass through it.
package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// Binary builds cpgd once per process and returns its path. Every build
// goes to the same place in the temporary directory (written aside, then
// renamed over the last one, so concurrent test binaries never run a
// half-written file): runs leave one binary behind, not one each.
func Binary() (string, error) {
	build.once.Do(func() {
		dir := filepath.Join(os.TempDir(), "cpgd-proctest")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			build.err = fmt.Errorf("proctest: %w", err)
			return
		}
		tmp := filepath.Join(dir, fmt.Sprintf("cpgd.%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", tmp, "github.com/cpggo/cpg/cmd/cpgd")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("proctest: build cpgd: %w\n%s", err, out)
			return
		}
		build.path = filepath.Join(dir, "cpgd")
		if err := os.Rename(tmp, build.path); err != nil {
			build.err = fmt.Errorf("proctest: %w", err)
		}
	})
	return build.path, build.err
}
