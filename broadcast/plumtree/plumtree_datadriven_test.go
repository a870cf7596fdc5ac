package plumtree

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios replays the protocol's scenarios in testdata. Commands:
//
//	add a b c           create nodes
//	link a-b b-c        overlay links (NeighborUp at both ends)
//	unlink a-b          lose a link (NeighborDown at both ends)
//	crash b             a node stops; its neighbours see NeighborDown
//	broadcast from=a id=m1
//	deliver [drop=a->c] [hold=a->e]
//	                    deliver queued messages (and what they cause) in
//	                    FIFO order until only held ones are left; drop loses
//	                    the messages of a link, hold keeps them queued
//	tick [n=1]          tick every node n times; prints what the ticks emit
//	sets root=a         eager and lazy peers of every node for root a
//	deliveries          delivery count per node and id, with its hop count
//	tree from=c root=a  c queries the tree of a; the answer, once complete
//	learn node=b id=m1  b's application learns m1 by other means than the
//	                    tree (an exchange): the tree's first copy is Known
//	hold node=b id=m1   b's application holds m1 and calls every copy a
//	                    Duplicate (it cannot tell how it got it)
//	missing             the payloads each node waits for, and who announced them
//	inject from=z to=a type=IHAVE|GRAFT|PRUNE|TREE-QUERY|EXCHANGE [topic=t] [id=m1] [root=a] [round=1]
//	                    a receives one message, from a neighbour or not;
//	                    prints the error, if any, and what a queues
//	stats node=a        a's non-zero counters, apart from messages by type
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		// Announcements go out at every tick, so that each tick of a
		// trace shows what the timers do.
		c := newCluster(t, Config{LazyFlushTicks: 1})
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			c.log.Reset()
			switch td.Cmd {
			case "add":
				for _, a := range td.CmdArgs {
					c.add(a.Key)
				}
				return "ok\n"
			case "link", "unlink":
				for _, a := range td.CmdArgs {
					ends := strings.Split(a.Key, "-")
					if td.Cmd == "link" {
						c.link(ends[0], ends[1])
					} else {
						c.unlink(ends[0], ends[1])
					}
				}
				c.dropExchanges()
				return "ok\n"
			case "crash":
				for _, a := range td.CmdArgs {
					c.crash(a.Key)
				}
				return "ok\n"
			case "broadcast":
				var from, id string
				td.ScanArgs(t, "from", &from)
				td.ScanArgs(t, "id", &id)
				if err := c.nodes[from].Broadcast(c.topic, []byte(id), []byte("payload of "+id)); err != nil {
					return err.Error() + "\n"
				}
				c.handlers[from].have[id] = []byte("payload of " + id)
				for _, env := range c.collect(from, 0) {
					fmt.Fprintf(&c.log, "%s->%s %v (queued)\n", from, env.To, env.Msg)
				}
				return c.log.String()
			case "deliver":
				c.deliverFIFO(argLinks(td, "drop"), argLinks(td, "hold"), argLinks(td, "refuse"))
				return c.log.String()
			case "tick":
				n := 1
				if td.HasArg("n") {
					td.ScanArgs(t, "n", &n)
				}
				for i := 0; i < n; i++ {
					for _, name := range c.names() {
						c.nodes[name].Tick()
						for _, env := range c.collect(name, 0) {
							fmt.Fprintf(&c.log, "t=%d %s->%s %v (queued)\n", c.nodes[name].Now(), name, env.To, env.Msg)
						}
					}
				}
				if c.log.Len() == 0 {
					return "ok\n"
				}
				return c.log.String()
			case "tree":
				var from, root string
				td.ScanArgs(t, "from", &from)
				td.ScanArgs(t, "root", &root)
				if _, err := c.nodes[from].QueryTree(root); err != nil {
					return err.Error() + "\n"
				}
				c.collect(from, 0)
				c.deliverFIFO(nil, nil, nil)
				for _, res := range c.trees[from] {
					fmt.Fprintf(&c.log, "tree of %s from %s:\n", res.Root, from)
					for _, n := range res.Nodes {
						fmt.Fprintf(&c.log, "  %s eager=%v lazy=%v\n", n.Name, n.Eager, n.Lazy)
					}
				}
				delete(c.trees, from)
				return c.log.String()
			case "learn", "hold":
				var node, id string
				td.ScanArgs(t, "node", &node)
				td.ScanArgs(t, "id", &id)
				h := c.handlers[node]
				if td.Cmd == "learn" {
					h.learn([]byte(id), []byte("payload of "+id))
				} else {
					h.have[id] = []byte("payload of " + id)
				}
				return "ok\n"
			case "missing":
				return c.missingEntries()
			case "inject":
				return c.inject(t, td)
			case "stats":
				var node string
				td.ScanArgs(t, "node", &node)
				return nonZeroCounters(c.nodes[node].Stats())
			case "sets":
				var root string
				td.ScanArgs(t, "root", &root)
				return c.sets(root)
			case "deliveries":
				var b strings.Builder
				for _, n := range c.names() {
					fmt.Fprintf(&b, "%s:", n)
					for _, id := range sortedKeys(c.handlers[n].delivered) {
						fmt.Fprintf(&b, " %s=%d(hops=%d)", id, c.handlers[n].delivered[id], c.handlers[n].rounds[id])
					}
					b.WriteString("\n")
				}
				return b.String()
			default:
				t.Fatalf("unknown command %q", td.Cmd)
				return ""
			}
		})
	})
}

// dropExchanges discards anti-entropy openings; the scenarios' handlers
// have none, so there are none, and the scenarios stay about the tree.
func (c *cluster) dropExchanges() {
	kept := c.queue[:0]
	for _, m := range c.queue {
		if m.env.Msg.Type != MsgExchange {
			kept = append(kept, m)
		}
	}
	c.queue = kept
}

// deliverFIFO delivers the queued messages in order. A message on a link
// in drop is lost on the way; one in hold waits for the next deliver; one
// in refuse never left: its sender's transport refused it (a full queue)
// and the sender is told so.
func (c *cluster) deliverFIFO(drop, hold, refuse map[string]bool) {
	var held []inflight
	for len(c.queue) > 0 {
		m := c.queue[0]
		c.queue = c.queue[1:]
		link := m.from + "->" + m.env.To
		switch {
		case hold[link]:
			held = append(held, m)
			continue
		case drop[link]:
			fmt.Fprintf(&c.log, "%s %v (dropped)\n", link, m.env.Msg)
			continue
		case refuse[link]:
			fmt.Fprintf(&c.log, "%s %v (refused by %s's transport)\n", link, m.env.Msg, m.from)
			if p := c.nodes[m.from]; p != nil {
				p.Undelivered(m.env.To, m.env.Msg)
				c.collect(m.from, 0)
			}
			continue
		}
		fmt.Fprintf(&c.log, "%s %v\n", link, m.env.Msg)
		if !c.step(m, 0) {
			fmt.Fprintf(&c.log, "  (lost)\n")
		}
	}
	c.queue = held
	for _, m := range held {
		fmt.Fprintf(&c.log, "%s->%s %v (held)\n", m.from, m.env.To, m.env.Msg)
	}
}

func argLinks(td *datadriven.TestData, key string) map[string]bool {
	links := map[string]bool{}
	for _, a := range td.CmdArgs {
		if a.Key == key {
			for _, v := range a.Vals {
				links[v] = true
			}
		}
	}
	return links
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Ids in scenarios are m1, m2, ...; sort by their number so m10 follows m9.
	num := func(s string) int { n, _ := strconv.Atoi(strings.TrimLeft(s, "m")); return n }
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && num(keys[j]) < num(keys[j-1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func (c *cluster) missingEntries() string {
	var b strings.Builder
	for _, n := range c.names() {
		p := c.nodes[n]
		keys := make([]msgKey, 0, len(p.missing))
		for k := range p.missing {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y msgKey) int { return strings.Compare(x.topic+"/"+x.id, y.topic+"/"+y.id) })
		for _, k := range keys {
			e := p.missing[k]
			var who []string
			for _, a := range e.announcers {
				who = append(who, a.peer)
			}
			fmt.Fprintf(&b, "%s: %s/%s announcers=%v\n", n, k.topic, k.id, who)
		}
	}
	if b.Len() == 0 {
		return "none\n"
	}
	return b.String()
}

// inject hands one message to a node directly, as if from any peer.
func (c *cluster) inject(t *testing.T, td *datadriven.TestData) string {
	var from, to, typ string
	td.ScanArgs(t, "from", &from)
	td.ScanArgs(t, "to", &to)
	td.ScanArgs(t, "type", &typ)
	topic, id, root := c.topic, "", ""
	var round int
	if td.HasArg("topic") {
		td.ScanArgs(t, "topic", &topic)
	}
	if td.HasArg("id") {
		td.ScanArgs(t, "id", &id)
	}
	if td.HasArg("root") {
		td.ScanArgs(t, "root", &root)
	}
	if td.HasArg("round") {
		td.ScanArgs(t, "round", &round)
	}
	var m Message
	switch typ {
	case "IHAVE":
		m = Message{Type: MsgIHave, IHaves: []Announcement{{Topic: topic, ID: []byte(id), Root: root, Round: uint32(round)}}}
	case "GRAFT":
		m = Message{Type: MsgGraft, Topic: topic, ID: []byte(id), Root: root, Round: uint32(round)}
	case "PRUNE":
		m = Message{Type: MsgPrune, Root: root}
	case "TREE-QUERY":
		m = Message{Type: MsgTreeQuery, Origin: from, Query: 1, Root: root, Budget: 10}
	case "EXCHANGE":
		m = Message{Type: MsgExchange, Topic: topic, Exchange: 1, Payload: []byte("digest")}
	default:
		t.Fatalf("inject: unknown type %q", typ)
	}
	if err := c.nodes[to].Step(from, m); err != nil {
		fmt.Fprintf(&c.log, "error: %v\n", err)
	}
	for _, env := range c.nodes[to].Ready().Messages {
		fmt.Fprintf(&c.log, "%s->%s %v (sent)\n", to, env.To, env.Msg)
	}
	if c.log.Len() == 0 {
		return "ok\n"
	}
	return c.log.String()
}

// nonZeroCounters lists a node's counters that are not zero, leaving out
// the per-type message counts.
func nonZeroCounters(s Stats) string {
	var b strings.Builder
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Uint64 && f.Uint() != 0 {
			fmt.Fprintf(&b, "%s=%d\n", v.Type().Field(i).Name, f.Uint())
		}
	}
	if b.Len() == 0 {
		return "none\n"
	}
	return b.String()
}
