package main

import (
	"context"
	"fmt"
	"time"

	"github.com/cpggo/cpg/internal/proctest"
)

// runPartition is w4: three nodes with 1,000 members each in 100 groups;
// node 1 is cut off from the other two; meanwhile it joins 100 more
// members and node 2 takes 100 away; the cut heals (nobody calls join) and
// the three are polled until their digests are equal and whole. Short: the
// cut lasts 0.5 s, less than a link's keepalive timeout. Long: it lasts
// until each side has declared the other dead.
func runPartition(t *table, trials int) error {
	for _, long := range []bool{false, true} {
		for trial := range trials {
			if err := partitionTrial(t, long, trial); err != nil {
				return fmt.Errorf("w4: %w", err)
			}
		}
	}
	return nil
}

func partitionTrial(t *table, long bool, trial int) error {
	c, err := proctest.Start(proctest.Config{Nodes: 3, Isolated: true, GossipProfile: *profile})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	scope := fmt.Sprintf("w4-%d", trial)
	for _, n := range c.Nodes {
		for i := range 1000 {
			if err := n.Join(ctx, scope, fmt.Sprintf("/bench/%d", i%100), fmt.Sprintf("%s-m%d", n.Name, i)); err != nil {
				return err
			}
		}
	}
	if _, err := proctest.WaitMembers(c.Nodes, scope, 3000, 20*time.Second); err != nil {
		return err
	}
	a, b := c.Nodes[0], c.Nodes[1]
	w := "W4 short (0.5 s)"
	if long {
		w = "W4 long (declared dead)"
	}
	cut := time.Now()
	if err := c.Partition([]int{0}, []int{1, 2}); err != nil {
		return err
	}
	for i := range 100 {
		if err := a.Join(ctx, scope, fmt.Sprintf("/bench/%d", i%100), fmt.Sprintf("%s-extra%d", a.Name, i)); err != nil {
			return err
		}
		if err := b.Leave(ctx, scope, fmt.Sprintf("/bench/%d", i%100), fmt.Sprintf("%s-m%d", b.Name, i)); err != nil {
			return err
		}
	}
	if long {
		if _, err := proctest.WaitStatus([]*proctest.Node{a}, b.Name, "dead", time.Minute); err != nil {
			return err
		}
		if _, err := proctest.WaitStatus([]*proctest.Node{b}, a.Name, "dead", time.Minute); err != nil {
			return err
		}
		t.add(w, "each side declared the other dead", "s after the cut", time.Since(cut).Seconds())
	} else {
		time.Sleep(time.Until(cut.Add(500 * time.Millisecond)))
	}
	if err := c.Heal(); err != nil {
		return err
	}
	took, err := proctest.WaitConverged(c.Nodes, scope, time.Minute)
	if err != nil {
		return err
	}
	// Equal digests of the whole state: 1,100 + 900 + 1,000 members.
	whole, err := proctest.WaitMembers(c.Nodes, scope, 3000, time.Minute)
	if err != nil {
		return err
	}
	t.add(w, "all 3 views equal and whole, no join called", "ms after healing", ms(max(took, whole)))
	return nil
}
