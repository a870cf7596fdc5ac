package hyparview

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestRevivalTraces replays the link revival policy, one file per path
// under testdata/revival.
//
// Commands:
//
//	config probe=N stall=N silent=N
//	                             a new Revival (ProbeTicks, StallTicks, SilentTicks)
//	tick [n=N]                   advance its clock
//	observe PEER [stalled] [silent=N]
//	                             the driver's observation of PEER's link:
//	                             prints "probe" when a probe should start
//	probe-failed PEER
//	probe-succeeded PEER         prints "replace" or "keep"
//	replaced PEER                the link was replaced or ended
//	state PEER...                suspect and probing flags
func TestRevivalTraces(t *testing.T) {
	datadriven.Walk(t, "testdata/revival", func(t *testing.T, path string) {
		r := NewRevival(RevivalConfig{ProbeTicks: 1})
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			intArg := func(key string, def int) int {
				for _, a := range d.CmdArgs {
					if a.Key == key && len(a.Vals) > 0 {
						v, err := strconv.Atoi(a.Vals[0])
						if err != nil {
							d.Fatalf(t, "%s: %v", key, err)
						}
						return v
					}
				}
				return def
			}
			peer := func() string {
				if len(d.CmdArgs) == 0 || len(d.CmdArgs[0].Vals) > 0 {
					d.Fatalf(t, "%s: want a peer name first", d.Cmd)
				}
				return d.CmdArgs[0].Key
			}
			switch d.Cmd {
			case "config":
				cfg := RevivalConfig{ProbeTicks: intArg("probe", 1), StallTicks: intArg("stall", 0), SilentTicks: intArg("silent", 0)}
				if err := cfg.Validate(); err != nil {
					return err.Error()
				}
				r = NewRevival(cfg)
				return "ok"
			case "tick":
				for range intArg("n", 1) {
					r.Tick()
				}
				return fmt.Sprintf("now=%d", r.now)
			case "observe":
				p := peer()
				h := LinkHealth{Stalled: d.HasArg("stalled"), SilentTicks: intArg("silent", 0)}
				if r.Observe(p, h) {
					return "probe"
				}
				return "wait"
			case "probe-failed":
				r.ProbeFailed(peer())
				return "ok"
			case "probe-succeeded":
				if r.ProbeSucceeded(peer()) {
					return "replace"
				}
				return "keep"
			case "replaced":
				r.Replaced(peer())
				return "ok"
			case "state":
				var b strings.Builder
				for _, a := range d.CmdArgs {
					fmt.Fprintf(&b, "%s: suspect=%t probing=%t\n", a.Key, r.Suspect(a.Key), r.Probing(a.Key))
				}
				return b.String()
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
				return ""
			}
		})
	})
}
