package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/cpggo/cpg/client"
	"github.com/cpggo/cpg/client/clienttest"
)

// agentForExample stands in for a running cpgd agent, so the examples run
// in go test; against a real one, pass its address (client.DefaultAddr)
// to client.New.
func agentForExample() *clienttest.Server {
	return clienttest.NewServer(clienttest.Options{Node: "node-a"})
}

// A service registers, and a caller finds it.
func Example() {
	agent := agentForExample()
	defer agent.Close()
	ctx := context.Background()

	c, err := client.New(agent.URL)
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Join(ctx, "default", "/svc/db", "db-1", client.JoinOptions{Meta: map[string]string{"addr": "10.0.0.7:5432"}})
	if err != nil {
		log.Fatal(err)
	}
	group, m, err := c.Pick(ctx, "default", "/svc/db", client.Closest)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(group, m.ID, "on", m.Node, "at", m.Meta["addr"])
	// Output: /svc/db db-1 on node-a at 10.0.0.7:5432
}

// A service registers under a lease that the client keeps alive: if the
// service dies, the lease lapses and its members leave.
func ExampleClient_Grant() {
	agent := agentForExample()
	defer agent.Close()
	ctx := context.Background()
	c, err := client.New(agent.URL)
	if err != nil {
		log.Fatal(err)
	}

	lease, err := c.Grant(ctx, 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Join(ctx, "default", "/svc/worker", "w1", client.JoinOptions{Lease: lease.ID})
	if err != nil {
		log.Fatal(err)
	}
	page, _ := c.Members(ctx, "default", "/svc/worker", client.MembersOptions{})
	fmt.Println("registered:", len(page.Members))

	// On shutdown: revoke, so that callers stop picking w1 at once.
	if err := lease.Revoke(ctx); err != nil {
		log.Fatal(err)
	}
	_, err = c.Members(ctx, "default", "/svc/worker", client.MembersOptions{})
	fmt.Println("after revoke:", errors.Is(err, client.ErrNotFound))
	// Output:
	// registered: 1
	// after revoke: true
}

// A watch with a snapshot mirrors a group: the current members, synced,
// then the changes.
func ExampleClient_Watch() {
	agent := agentForExample()
	defer agent.Close()
	c, err := client.New(agent.URL)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.Join(ctx, "default", "/svc/web", "w1", client.JoinOptions{}); err != nil {
		log.Fatal(err)
	}

	events, err := c.Watch(ctx, "default", "/svc/*", client.WatchOptions{Snapshot: true})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Join(ctx, "default", "/svc/web", "w2", client.JoinOptions{}); err != nil {
		log.Fatal(err)
	}
	mirror := map[string]bool{}
	for ev := range events {
		switch ev.Kind {
		case client.EventReset:
			clear(mirror) // the member events that follow are the whole state
		case client.EventMember, client.EventJoin:
			mirror[ev.Member.ID] = true
		case client.EventLeave:
			if ev.Member.Count == 0 {
				delete(mirror, ev.Member.ID)
			}
		}
		if ev.Kind == client.EventSynced {
			fmt.Println("synced")
		} else {
			fmt.Println(ev.Kind, ev.Group, ev.Member.ID)
		}
		if len(mirror) == 2 {
			cancel()
		}
	}
	// Output:
	// member /svc/web w1
	// synced
	// join /svc/web w2
}

// Every member of a large group, page after page.
func ExampleClient_AllMembers() {
	agent := agentForExample()
	defer agent.Close()
	ctx := context.Background()
	c, err := client.New(agent.URL)
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := c.Join(ctx, "default", "/jobs", id, client.JoinOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	for m, err := range c.AllMembers(ctx, "default", "/jobs", client.MembersOptions{Limit: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.ID)
	}
	// Output:
	// a
	// b
	// c
}

// The agent's refusals are *client.Error values that errors.Is matches.
func ExampleError() {
	agent := agentForExample()
	defer agent.Close()
	c, err := client.New(agent.URL)
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Leave(context.Background(), "default", "/svc/db", "db-9")
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Message)
	}
	fmt.Println(errors.Is(err, client.ErrNotFound))
	// Output:
	// 404 db-9 is not a member of /svc/db
	// true
}
