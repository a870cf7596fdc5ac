package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// workload is one measured use of the agent.
type workload struct {
	name    string
	clients func(o *options) int
	run     func(o *options) (sample, error)
}

var workloadsByName = map[string]workload{}

func init() {
	for _, w := range []workload{
		{"lookup", readers, func(o *options) (sample, error) { return readWorkload(o, lookupTarget) }},
		{"pick", readers, func(o *options) (sample, error) { return readWorkload(o, pickTarget) }},
		{"embedded", readers, embeddedLookups},
		{"join", writers, func(o *options) (sample, error) { return joinWorkload(o, spreadJoin, 0, idleWatch) }},
		{"join-idle-watchers", writers, func(o *options) (sample, error) { return joinWorkload(o, spreadJoin, o.watchers, idleWatch) }},
		{"busy-join", writers, func(o *options) (sample, error) { return joinWorkload(o, busyJoin, 0, busyWatch) }},
		{"busy-join-watchers", writers, func(o *options) (sample, error) { return joinWorkload(o, busyJoin, o.watchers, busyWatch) }},
	} {
		workloadsByName[w.name] = w
	}
}

func readers(o *options) int { return o.readers }
func writers(o *options) int { return o.writers }

// groupName is the i-th of the groups lookups choose from.
func groupName(i int) string { return "/svc/" + strconv.Itoa(i) + "/x" }

func lookupTarget(g int) string {
	return "/v1/scopes/default/members?name=" + groupName(g)
}

func pickTarget(g int) string {
	return "/v1/scopes/default/pick?strategy=random&name=" + groupName(g)
}

// preload fills the agent with o.groups groups of o.perGroup members
// through the API, 16 clients at a time.
func preload(o *options, addr string) error {
	total := o.groups * o.perGroup
	const clients = 16
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn, err := dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer cn.close()
			for i := c; i < total; i += clients {
				body := fmt.Appendf(nil, `{"group":%q,"member":"m%d"}`, groupName(i%o.groups), i)
				if err := expect200(cn.do(request("POST", addr, "/v1/scopes/default/join", o.token, body))); err != nil {
					errs <- fmt.Errorf("preload: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func expect200(status int, err error) error {
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("status %d", status)
	}
	return nil
}

// readWorkload runs o.readers clients that each ask for target(g) of
// pseudo-random groups g over their own keep-alive connection.
func readWorkload(o *options, target func(g int) string) (sample, error) {
	a, err := startAgent(o.binary, o.agentArgs)
	if err != nil {
		return sample{}, err
	}
	defer a.stop()
	if err := preload(o, a.addr); err != nil {
		return sample{}, err
	}
	// Requests are built beforehand: the generator only writes and reads.
	reqs := make([][]byte, o.groups)
	for g := range reqs {
		reqs[g] = request("GET", a.addr, target(g), o.token, nil)
	}
	conns, err := dialAll(a.addr, o.readers)
	if err != nil {
		return sample{}, err
	}
	defer closeAll(conns)
	rngs := make([]*rand.Rand, o.readers)
	for c := range rngs {
		rngs[c] = rand.New(rand.NewPCG(uint64(c), 1))
	}
	return closedLoop(o.readers, o.warmup, o.duration, a.cpuTime, func(c, _ int) error {
		return expect200(conns[c].do(reqs[rngs[c].IntN(len(reqs))]))
	})
}

func dialAll(addr string, n int) ([]*conn, error) {
	conns := make([]*conn, 0, n)
	for range n {
		c, err := dial(addr)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []*conn) {
	for _, c := range conns {
		c.close()
	}
}

// A join workload's joins: spread over one group per client, or all into
// one busy group. Every join adds a new member.
func spreadJoin(client, i int) string {
	return fmt.Sprintf(`{"group":"/load/%d","member":"c%d-%d"}`, client, client, i)
}

func busyJoin(client, i int) string {
	return fmt.Sprintf(`{"group":"/busy","member":"c%d-%d"}`, client, i)
}

// The watchers of a join workload: of groups nobody joins, or of the busy
// group.
func idleWatch(i int) string { return "/v1/scopes/default/watch?pattern=/idle/" + strconv.Itoa(i) }
func busyWatch(int) string   { return "/v1/scopes/default/watch?pattern=/busy" }

// joinWorkload runs o.writers clients joining new members, with watchers
// streams open (and read) meanwhile.
func joinWorkload(o *options, join func(client, i int) string, watchers int, watch func(i int) string) (sample, error) {
	a, err := startAgent(o.binary, o.agentArgs)
	if err != nil {
		return sample{}, err
	}
	defer a.stop()
	if err := preload(o, a.addr); err != nil {
		return sample{}, err
	}
	ws, err := openWatches(o, a.addr, watchers, watch)
	if err != nil {
		return sample{}, err
	}
	conns, err := dialAll(a.addr, o.writers)
	if err != nil {
		ws.close()
		return sample{}, err
	}
	defer closeAll(conns)
	s, err := closedLoop(o.writers, o.warmup, o.duration, a.cpuTime, func(c, i int) error {
		body := []byte(join(c, i))
		return expect200(conns[c].do(request("POST", a.addr, "/v1/scopes/default/join", o.token, body)))
	})
	if watchers > 0 {
		// Give the streams a moment to catch up before counting.
		time.Sleep(200 * time.Millisecond)
		s.note = ws.summary()
	}
	ws.close()
	return s, err
}
