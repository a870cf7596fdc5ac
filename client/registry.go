package client

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"time"
)

// Member is a member of a group as the agent lists it.
type Member struct {
	// ID is the member's name, unique in its group per node.
	ID string `json:"id"`
	// Node is the cluster node the member joined through.
	Node string `json:"node"`
	// Meta is the member's metadata (nil when it has none).
	Meta map[string]string `json:"meta,omitempty"`
	// Count is how many times the member joined (leaves take one back).
	Count int `json:"count"`
	// Joined is when it joined, by its node's clock.
	Joined time.Time `json:"joined"`
}

// Membership is the state of one member of one group after a join, leave
// or metadata change.
type Membership struct {
	Group  string `json:"group"`
	Member string `json:"member"`
	// Count is the member's join count after the change (0 once it left).
	Count int `json:"count"`
}

// JoinOptions are the optional parts of a join.
type JoinOptions struct {
	// Meta is the member's metadata, replacing what it had.
	Meta map[string]string
	// Lease binds the join to a lease (Lease.ID): the member leaves when
	// the lease lapses or is revoked.
	Lease string
}

type membershipRequest struct {
	Group  string            `json:"group"`
	Member string            `json:"member"`
	Meta   map[string]string `json:"meta,omitempty"`
	Lease  string            `json:"lease,omitempty"`
}

// Join joins member to group in scope once more (joins are counted, as in
// CPG: it takes as many leaves to leave).
func (c *Client) Join(ctx context.Context, scope, group, member string, opts JoinOptions) (Membership, error) {
	var out Membership
	err := c.do(ctx, "POST", scopePath(scope, "join"), nil,
		membershipRequest{Group: group, Member: member, Meta: opts.Meta, Lease: opts.Lease}, &out)
	return out, err
}

// Leave takes back one join of member to group; ErrNotFound if it is not
// a member.
func (c *Client) Leave(ctx context.Context, scope, group, member string) (Membership, error) {
	var out Membership
	err := c.do(ctx, "POST", scopePath(scope, "leave"), nil, membershipRequest{Group: group, Member: member}, &out)
	return out, err
}

// SetMeta replaces a member's metadata; an empty or nil meta clears it.
func (c *Client) SetMeta(ctx context.Context, scope, group, member string, meta map[string]string) (Membership, error) {
	if meta == nil {
		// The API tells "clear" ({}) from "absent", so nil must be sent
		// as an empty object.
		meta = map[string]string{}
	}
	body := struct {
		Group  string            `json:"group"`
		Member string            `json:"member"`
		Meta   map[string]string `json:"meta"`
	}{group, member, meta}
	var out Membership
	err := c.do(ctx, "POST", scopePath(scope, "meta"), nil, body, &out)
	return out, err
}

// Where restricts a member listing to one side of the cluster.
type Where string

const (
	// Everywhere lists every member (the default).
	Everywhere Where = ""
	// Local lists the members that joined through this agent's node.
	Local Where = "local"
	// Remote lists the members that joined through other nodes.
	Remote Where = "remote"
)

// MembersOptions are the optional parts of a member listing.
type MembersOptions struct {
	Where Where
	// Limit is the page size (0: the agent's default).
	Limit int
	// After is the cursor a previous page returned as Next.
	After string
}

// MembersPage is one page of a group's members.
type MembersPage struct {
	// Group is the stored name that matched (a pattern group may match a
	// concrete name).
	Group   string   `json:"group"`
	Members []Member `json:"members"`
	// Next is the cursor of the next page; empty on the last one.
	Next string `json:"next,omitempty"`
}

func (o MembersOptions) query(name string) url.Values {
	q := url.Values{"name": {name}}
	if o.Where != Everywhere {
		q.Set("where", string(o.Where))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.After != "" {
		q.Set("after", o.After)
	}
	return q
}

// Members returns one page of the members of the group that name matches;
// ErrNotFound when none does. Pass the page's Next as opts.After for the
// next one, or use AllMembers.
func (c *Client) Members(ctx context.Context, scope, name string, opts MembersOptions) (MembersPage, error) {
	var out MembersPage
	err := c.do(ctx, "GET", scopePath(scope, "members"), opts.query(name), nil, &out)
	return out, err
}

// AllMembers iterates over every member of the group that name matches,
// page after page of opts.Limit (starting after opts.After). An error ends
// the iteration after it is yielded.
//
// Pages are read one after the other: a member that joins or leaves while
// the iteration runs may or may not be seen, but no member present
// throughout is missed or seen twice.
func (c *Client) AllMembers(ctx context.Context, scope, name string, opts MembersOptions) iter.Seq2[Member, error] {
	return func(yield func(Member, error) bool) {
		for page, err := range c.pages(ctx, scope, name, opts) {
			if err != nil {
				yield(Member{}, err)
				return
			}
			for _, m := range page.Members {
				if !yield(m, nil) {
					return
				}
			}
		}
	}
}

// ListMembers reads every page of the group that name matches (as
// AllMembers) and returns them as one, without a Next.
func (c *Client) ListMembers(ctx context.Context, scope, name string, opts MembersOptions) (MembersPage, error) {
	all := MembersPage{Members: []Member{}}
	for page, err := range c.pages(ctx, scope, name, opts) {
		if err != nil {
			return MembersPage{}, err
		}
		all.Group = page.Group
		all.Members = append(all.Members, page.Members...)
	}
	return all, nil
}

// pages yields the pages of a member listing until the last.
func (c *Client) pages(ctx context.Context, scope, name string, opts MembersOptions) iter.Seq2[MembersPage, error] {
	return func(yield func(MembersPage, error) bool) {
		for {
			page, err := c.Members(ctx, scope, name, opts)
			if err != nil {
				yield(MembersPage{}, err)
				return
			}
			if !yield(page, nil) || page.Next == "" {
				return
			}
			if page.Next == opts.After {
				yield(MembersPage{}, fmt.Errorf("cpgd client: members of %q: the agent returned the same cursor %q twice", name, page.Next))
				return
			}
			opts.After = page.Next
		}
	}
}

// Strategy says which member Pick chooses.
type Strategy string

// Strategies lists every strategy the API knows.
var Strategies = []Strategy{Closest, Furthest, Random, Oldest, Newest, PickLocal, PickRemote}

// The strategies of the API (see the registry package for their meaning).
const (
	Closest  Strategy = "closest"
	Furthest Strategy = "furthest"
	Random   Strategy = "random"
	Oldest   Strategy = "oldest"
	Newest   Strategy = "newest"
	// PickLocal and PickRemote choose among local or remote members only.
	PickLocal  Strategy = "local"
	PickRemote Strategy = "remote"
)

// Pick chooses one member of the group that name matches, by strategy,
// skipping the members whose ID is in exclude. It returns the matched
// group's name and the member; ErrNotFound when no member is eligible.
func (c *Client) Pick(ctx context.Context, scope, name string, strategy Strategy, exclude ...string) (string, Member, error) {
	q := url.Values{"name": {name}, "strategy": {string(strategy)}}
	for _, id := range exclude {
		q.Add("exclude", id)
	}
	var out struct {
		Group  string `json:"group"`
		Member Member `json:"member"`
	}
	err := c.do(ctx, "GET", scopePath(scope, "pick"), q, nil, &out)
	return out.Group, out.Member, err
}

// Scopes lists the agent's scopes.
func (c *Client) Scopes(ctx context.Context) ([]string, error) {
	var out struct {
		Scopes []string `json:"scopes"`
	}
	err := c.do(ctx, "GET", "/v1/scopes", nil, nil, &out)
	return out.Scopes, err
}

// Groups lists the stored group names and patterns of scope, sorted.
func (c *Client) Groups(ctx context.Context, scope string) ([]string, error) {
	var out struct {
		Groups []string `json:"groups"`
	}
	err := c.do(ctx, "GET", scopePath(scope, "groups"), nil, nil, &out)
	return out.Groups, err
}

// Digest sums up a node's replica: equal on every node once the cluster
// has converged.
type Digest struct {
	// Digest fingerprints the whole replica (every scope).
	Digest string `json:"digest"`
	// Groups and Members count the scope's stored groups and their members.
	Groups  int `json:"groups"`
	Members int `json:"members"`
}

// Digest returns the agent's digest, with scope's counts.
func (c *Client) Digest(ctx context.Context, scope string) (Digest, error) {
	var out Digest
	err := c.do(ctx, "GET", scopePath(scope, "digest"), nil, nil, &out)
	return out, err
}
