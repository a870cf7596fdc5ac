package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cpggo/cpg/internal/proctest"
)

// runPurge is w3: node 1 of 3 holds 1,000 members in 100 groups and goes,
// three ways; the other two are polled until they list none of them.
func runPurge(t *table, trials int) error {
	ways := []struct {
		name string
		end  func(n *proctest.Node) error
	}{
		{"sigterm (graceful leave)", func(n *proctest.Node) error { return n.Terminate(10 * time.Second) }},
		{"kill9", (*proctest.Node).Kill},
		{"sigstop", (*proctest.Node).Stop},
	}
	for _, way := range ways {
		for trial := range trials {
			if err := purgeTrial(t, way.name, way.end, trial); err != nil {
				return fmt.Errorf("w3 %s: %w", way.name, err)
			}
		}
	}
	return nil
}

func purgeTrial(t *table, way string, end func(*proctest.Node) error, trial int) error {
	c, err := proctest.Start(proctest.Config{Nodes: 3, GossipProfile: *profile})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	scope := fmt.Sprintf("w3-%d", trial)
	a := c.Nodes[0]
	for i := range 1000 {
		if err := a.Join(ctx, scope, fmt.Sprintf("/bench/%d", i%100), fmt.Sprintf("m%d", i)); err != nil {
			return err
		}
	}
	observers := c.Nodes[1:]
	if _, err := proctest.WaitMembers(observers, scope, 1000, 10*time.Second); err != nil {
		return err
	}

	var wg sync.WaitGroup
	purged := make([]time.Duration, len(observers))
	declared := make([]time.Duration, len(observers))
	errs := make([]error, len(observers))
	var start time.Time
	begin := make(chan struct{})
	for i, o := range observers {
		wg.Go(func() {
			<-begin
			deadline := start.Add(60 * time.Second)
			for purged[i] == 0 || declared[i] == 0 {
				if time.Now().After(deadline) {
					errs[i] = fmt.Errorf("%s still lists members or %s alive after 60 s", o.Name, a.Name)
					return
				}
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				if purged[i] == 0 {
					if d, err := o.Digest(cctx, scope); err == nil && d.Members == 0 {
						purged[i] = time.Since(start)
					}
				}
				if declared[i] == 0 {
					if st, err := o.NodeStatus(cctx); err == nil && (st[a.Name] == "dead" || st[a.Name] == "left") {
						declared[i] = time.Since(start)
					}
				}
				cancel()
			}
		})
	}
	start = time.Now()
	close(begin)
	err = end(a)
	wg.Wait()
	if err != nil {
		return err
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	w := "W3 " + way
	t.add(w, "all 1000 of A's members purged (slowest observer)", "ms after the signal", ms(max(purged[0], purged[1])))
	t.add(w, "A listed dead or left (slowest observer)", "ms after the signal", ms(max(declared[0], declared[1])))
	return nil
}
