package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cpggo/cpg/client"
)

// clientVerbs are the verbs that talk to a running agent.
var clientVerbs = map[string]func(ctx context.Context, args []string, stdout io.Writer) error{
	"join":    verbJoin,
	"leave":   verbLeave,
	"meta":    verbMeta,
	"members": verbMembers,
	"pick":    verbPick,
	"scopes":  verbScopes,
	"groups":  verbGroups,
	"digest":  verbDigest,
	"nodes":   verbNodes,
	"overlay": verbOverlay,
	"watch":   verbWatch,
	"lease":   verbLease,
}

// cliCommand is one client verb's command line: the flags every verb
// shares, its own, and its arguments.
type cliCommand struct {
	name, synopsis, summary string
	fs                      *flag.FlagSet
	stdout                  io.Writer
	addr, token, scope      string
	asJSON                  bool
}

// newCLICommand starts a verb's command line; scoped verbs take --scope.
func newCLICommand(stdout io.Writer, name, synopsis, summary string, scoped bool) *cliCommand {
	c := &cliCommand{name: name, synopsis: synopsis, summary: summary, stdout: stdout,
		fs: flag.NewFlagSet("cpgd "+name, flag.ContinueOnError)}
	c.fs.SetOutput(io.Discard)
	c.fs.StringVar(&c.addr, "addr", envOr("CPGD_ADDR", client.DefaultAddr), "the agent's API [CPGD_ADDR]")
	c.fs.StringVar(&c.token, "token", envOr("CPGD_TOKEN", ""), "the agent's bearer token [CPGD_TOKEN]")
	c.fs.BoolVar(&c.asJSON, "json", false, "print JSON for scripts instead of a table")
	if scoped {
		c.fs.StringVar(&c.scope, "scope", "default", "the scope")
	}
	return c
}

// parse reads the command line, flags anywhere among the arguments (up to
// a "--"), and checks the number of arguments: at least min, at most max
// (-1: any). --help prints the verb's usage and returns flag.ErrHelp.
func (c *cliCommand) parse(args []string, min, max int) ([]string, error) {
	var positional []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.usage(c.stdout)
				return nil, err
			}
			return nil, c.usageError("%v", err)
		}
		consumed := len(args) - c.fs.NArg()
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	switch {
	case len(positional) < min:
		return nil, c.usageError("want %s", c.synopsis)
	case max >= 0 && len(positional) > max:
		return nil, c.usageError("unexpected arguments %q", positional[max:])
	}
	return positional, nil
}

func (c *cliCommand) usageError(format string, args ...any) error {
	return fmt.Errorf("%w: cpgd %s: %s (cpgd %s --help)", errUsage, c.name, fmt.Sprintf(format, args...), c.name)
}

func (c *cliCommand) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: cpgd %s [flags] %s\n\n%s\n\nflags:\n", c.name, c.synopsis, c.summary)
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

// open parses the verb's command line (between min and max positional
// arguments; max -1: any) and makes its client of the agent.
func (c *cliCommand) open(args []string, min, max int) ([]string, *client.Client, error) {
	pos, err := c.parse(args, min, max)
	if err != nil {
		return nil, nil, err
	}
	cl, err := c.client()
	return pos, cl, err
}

func (c *cliCommand) client() (*client.Client, error) {
	cl, err := client.New(c.addr, client.WithToken(c.token))
	if err != nil {
		return nil, fmt.Errorf("%w: --addr: %v", errUsage, err)
	}
	return cl, nil
}

// print writes v as one line of JSON with --json, else calls human.
func (c *cliCommand) print(v any, human func(w io.Writer)) error {
	if c.asJSON {
		return json.NewEncoder(c.stdout).Encode(v)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	human(tw)
	return tw.Flush()
}

// parseMeta reads KEY=VALUE arguments into metadata.
func (c *cliCommand) parseMeta(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	meta := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, c.usageError("metadata %q: want KEY=VALUE", p)
		}
		meta[k] = v
	}
	return meta, nil
}

// metaText shows metadata as sorted KEY=VALUE pairs.
func metaText(meta map[string]string) string {
	keys := slices.Sorted(maps.Keys(meta))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + meta[k]
	}
	return strings.Join(parts, " ")
}

func verbJoin(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "join", "GROUP MEMBER [KEY=VALUE...]",
		"Join MEMBER to GROUP once more (joins are counted), with the metadata given, which replaces the member's.", true)
	lease := c.fs.String("lease", "", "bind the join to this lease: the member leaves when it lapses or is revoked")
	pos, cl, err := c.open(args, 2, -1)
	if err != nil {
		return err
	}
	meta, err := c.parseMeta(pos[2:])
	if err != nil {
		return err
	}
	m, err := cl.Join(ctx, c.scope, pos[0], pos[1], client.JoinOptions{Meta: meta, Lease: *lease})
	if err != nil {
		return err
	}
	return c.print(m, func(w io.Writer) {
		fmt.Fprintf(w, "%s joined %s (joins: %d)\n", m.Member, m.Group, m.Count)
	})
}

func verbLeave(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "leave", "GROUP MEMBER", "Take back one join of MEMBER to GROUP.", true)
	pos, cl, err := c.open(args, 2, 2)
	if err != nil {
		return err
	}
	m, err := cl.Leave(ctx, c.scope, pos[0], pos[1])
	if err != nil {
		return err
	}
	return c.print(m, func(w io.Writer) {
		if m.Count == 0 {
			fmt.Fprintf(w, "%s left %s\n", m.Member, m.Group)
			return
		}
		fmt.Fprintf(w, "%s took back one join of %s (joins left: %d)\n", m.Member, m.Group, m.Count)
	})
}

func verbMeta(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "meta", "GROUP MEMBER [KEY=VALUE...]",
		"Replace the metadata of MEMBER in GROUP with the pairs given; none clears it.", true)
	pos, cl, err := c.open(args, 2, -1)
	if err != nil {
		return err
	}
	meta, err := c.parseMeta(pos[2:])
	if err != nil {
		return err
	}
	m, err := cl.SetMeta(ctx, c.scope, pos[0], pos[1], meta)
	if err != nil {
		return err
	}
	return c.print(m, func(w io.Writer) {
		if len(meta) == 0 {
			fmt.Fprintf(w, "cleared the metadata of %s in %s\n", m.Member, m.Group)
			return
		}
		fmt.Fprintf(w, "set the metadata of %s in %s: %s\n", m.Member, m.Group, metaText(meta))
	})
}

// memberRows writes members as a table.
func memberRows(w io.Writer, members []client.Member) {
	fmt.Fprintln(w, "MEMBER\tNODE\tJOINS\tJOINED\tMETA")
	for _, m := range members {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", m.ID, m.Node, m.Count, m.Joined.Format(time.RFC3339), metaText(m.Meta))
	}
}

func verbMembers(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "members", "NAME",
		"List the members of the group NAME selects (a pattern group may match a concrete NAME). "+
			"Without --limit it lists them all, page after page; with it, one page and the cursor of the next.", true)
	where := c.fs.String("where", "", "local or remote: only the members that joined through this node, or through others")
	limit := c.fs.Int("limit", 0, "list one page of this many members")
	after := c.fs.String("after", "", "the cursor of the page to list (printed after a page)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *limit < 0 {
		return c.usageError("--limit %d: want a page size", *limit)
	}
	if *where != "" && *where != string(client.Local) && *where != string(client.Remote) {
		return c.usageError("--where %q: want local or remote", *where)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	opts := client.MembersOptions{Where: client.Where(*where), Limit: *limit, After: *after}
	if *limit > 0 {
		page, err := cl.Members(ctx, c.scope, pos[0], opts)
		if err != nil {
			return err
		}
		return c.print(page, func(w io.Writer) {
			memberRows(w, page.Members)
			if page.Next != "" {
				fmt.Fprintf(w, "next page: --after %s\n", page.Next)
			}
		})
	}
	all, err := cl.ListMembers(ctx, c.scope, pos[0], opts)
	if err != nil {
		return err
	}
	return c.print(all, func(w io.Writer) { memberRows(w, all.Members) })
}

func verbPick(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "pick", "NAME",
		"Choose one member of the group NAME selects.", true)
	strategy := c.fs.String("strategy", "random", "closest, furthest, random, local, remote, oldest or newest")
	var exclude stringList
	c.fs.Var(&exclude, "exclude", "a member ID to skip (repeat for more)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if !slices.Contains(client.Strategies, client.Strategy(*strategy)) {
		return c.usageError("--strategy %q: want one of %v", *strategy, client.Strategies)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	group, m, err := cl.Pick(ctx, c.scope, pos[0], client.Strategy(*strategy), exclude...)
	if err != nil {
		return err
	}
	return c.print(map[string]any{"group": group, "member": m}, func(w io.Writer) {
		memberRows(w, []client.Member{m})
	})
}

// stringList is a flag that may repeat.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// printLines prints one name per line, or a JSON object {key: names}.
func printLines(c *cliCommand, key string, names []string) error {
	if names == nil {
		names = []string{}
	}
	return c.print(map[string][]string{key: names}, func(w io.Writer) {
		for _, n := range names {
			fmt.Fprintln(w, n)
		}
	})
}

func verbScopes(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "scopes", "", "List the agent's scopes.", false)
	_, cl, err := c.open(args, 0, 0)
	if err != nil {
		return err
	}
	scopes, err := cl.Scopes(ctx)
	if err != nil {
		return err
	}
	return printLines(c, "scopes", scopes)
}

func verbGroups(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "groups", "", "List the scope's group names and patterns.", true)
	_, cl, err := c.open(args, 0, 0)
	if err != nil {
		return err
	}
	groups, err := cl.Groups(ctx, c.scope)
	if err != nil {
		return err
	}
	return printLines(c, "groups", groups)
}

func verbDigest(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "digest", "",
		"Print the agent's digest and the scope's group and member counts: equal on every node once the cluster has converged.", true)
	_, cl, err := c.open(args, 0, 0)
	if err != nil {
		return err
	}
	d, err := cl.Digest(ctx, c.scope)
	if err != nil {
		return err
	}
	return c.print(d, func(w io.Writer) {
		fmt.Fprintf(w, "digest\t%s\ngroups\t%d\nmembers\t%d\n", d.Digest, d.Groups, d.Members)
	})
}

func nodeRow(w io.Writer, n client.Node) {
	rtt := "-"
	if n.RTTms > 0 {
		rtt = fmt.Sprintf("%.2fms", n.RTTms)
	}
	fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", n.Name, n.Status, n.Incarnation, rtt, n.HTTP, n.Gossip, n.Addr)
}

const nodeHeader = "NODE\tSTATUS\tINCARNATION\tRTT\tHTTP\tGOSSIP\tOVERLAY\n"

func verbNodes(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "nodes", "",
		"List the cluster's nodes as the agent's failure detector knows them; with --watch, follow their status until interrupted.", false)
	watch := c.fs.Bool("watch", false, "print the nodes, then one line per status change until interrupted")
	_, cl, err := c.open(args, 0, 0)
	if err != nil {
		return err
	}
	if *watch {
		return watchNodes(ctx, c, cl)
	}
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return err
	}
	if nodes == nil {
		nodes = []client.Node{}
	}
	return c.print(map[string]any{"nodes": nodes}, func(w io.Writer) {
		fmt.Fprint(w, nodeHeader)
		for _, n := range nodes {
			nodeRow(w, n)
		}
	})
}

func watchNodes(ctx context.Context, c *cliCommand, cl *client.Client) error {
	events, err := cl.WatchNodes(ctx, client.WatchOptions{})
	if err != nil {
		return err
	}
	for ev := range events {
		if c.asJSON {
			if err := json.NewEncoder(c.stdout).Encode(nodeEventJSON(ev)); err != nil {
				return err
			}
			continue
		}
		switch ev.Kind {
		case client.EventSynced:
			continue
		case client.EventReset:
			fmt.Fprintf(c.stdout, "reset: %s\n", ev.Reason)
		default:
			fmt.Fprintf(c.stdout, "%s %s %s incarnation=%d rtt=%.2fms\n", time.Now().Format(time.TimeOnly), ev.Kind, ev.Node.Name, ev.Node.Incarnation, ev.Node.RTTms)
		}
	}
	return nil
}

func nodeEventJSON(ev client.NodeEvent) map[string]any {
	out := map[string]any{"kind": ev.Kind}
	switch ev.Kind {
	case client.EventReset:
		out["reason"] = ev.Reason
	case client.EventSynced:
	default:
		out["node"] = ev.Node
	}
	return out
}

func verbOverlay(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "overlay", "",
		"Show the agent's overlay: the peers it holds links to (active), those it would replace a lost link with (passive), and its broadcast tree's eager and lazy peers.", false)
	_, cl, err := c.open(args, 0, 0)
	if err != nil {
		return err
	}
	o, err := cl.Overlay(ctx)
	if err != nil {
		return err
	}
	return c.print(o, func(w io.Writer) {
		if o.Name != "" {
			fmt.Fprintf(w, "node %s\n", o.Name)
		}
		fmt.Fprintln(w, "VIEW\tPEER\tADDR")
		for _, p := range o.Active {
			fmt.Fprintf(w, "active\t%s\t%s\n", p.Name, p.Addr)
		}
		for _, p := range o.Passive {
			fmt.Fprintf(w, "passive\t%s\t%s\n", p.Name, p.Addr)
		}
		for _, name := range o.Eager {
			fmt.Fprintf(w, "eager\t%s\t\n", name)
		}
		for _, name := range o.Lazy {
			fmt.Fprintf(w, "lazy\t%s\t\n", name)
		}
	})
}

func verbWatch(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "watch", "PATTERN",
		"Print one line per join, leave and metadata change of the groups PATTERN selects, until interrupted. "+
			"The watch reconnects and resumes by itself; when it cannot, it prints a reset line and the members again.", true)
	snapshot := c.fs.Bool("snapshot", false, "print the current members first (then a synced line)")
	pos, cl, err := c.open(args, 1, 1)
	if err != nil {
		return err
	}
	events, err := cl.Watch(ctx, c.scope, pos[0], client.WatchOptions{Snapshot: *snapshot})
	if err != nil {
		return err
	}
	for ev := range events {
		if c.asJSON {
			if err := json.NewEncoder(c.stdout).Encode(eventJSON(ev)); err != nil {
				return err
			}
			continue
		}
		var err error
		switch ev.Kind {
		case client.EventSynced:
			_, err = fmt.Fprintln(c.stdout, "synced")
		case client.EventReset:
			_, err = fmt.Fprintf(c.stdout, "reset: %s\n", ev.Reason)
		default:
			line := fmt.Sprintf("%s %s %s node=%s joins=%d", ev.Kind, ev.Group, ev.Member.ID, ev.Member.Node, ev.Member.Count)
			if len(ev.Member.Meta) > 0 {
				line += " " + metaText(ev.Member.Meta)
			}
			_, err = fmt.Fprintln(c.stdout, line)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func eventJSON(ev client.Event) map[string]any {
	out := map[string]any{"kind": ev.Kind}
	switch ev.Kind {
	case client.EventReset:
		out["reason"] = ev.Reason
	case client.EventSynced:
		out["id"] = ev.ID
	default:
		out["scope"], out["group"], out["member"] = ev.Scope, ev.Group, ev.Member
		if ev.ID != "" {
			out["id"] = ev.ID
		}
	}
	return out
}

func verbLease(ctx context.Context, args []string, stdout io.Writer) error {
	subs := map[string]func(context.Context, []string, io.Writer) error{
		"grant": verbLeaseGrant, "keepalive": verbLeaseKeepAlive, "revoke": verbLeaseRevoke, "show": verbLeaseShow,
	}
	if len(args) == 0 || args[0] == "--help" || args[0] == "-help" || args[0] == "-h" {
		help := "usage: cpgd lease grant|keepalive|revoke|show [flags] ...\n" +
			"\nLeases bind joins to a client's liveness: a member joined with --lease leaves when the lease lapses or is revoked.\n" +
			"cpgd lease SUBVERB --help lists a subverb's flags.\n"
		if len(args) == 0 {
			return fmt.Errorf("%w: cpgd lease: want a subverb: grant, keepalive, revoke or show (cpgd lease --help)", errUsage)
		}
		fmt.Fprint(stdout, help)
		return flag.ErrHelp
	}
	sub, ok := subs[args[0]]
	if !ok {
		return fmt.Errorf("%w: cpgd lease: unknown subverb %q: want grant, keepalive, revoke or show", errUsage, args[0])
	}
	return sub(ctx, args[1:], stdout)
}

// leaseRow shows a lease on one line (no tabs: it takes no part in a
// table printed under it).
func leaseRow(w io.Writer, l client.LeaseInfo) {
	fmt.Fprintf(w, "lease %s: ttl %s, expires %s\n", l.ID, l.TTL, l.Expires.Format(time.RFC3339))
}

func verbLeaseGrant(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "lease grant", "TTL",
		"Create a lease that lapses after TTL (such as 10s) unless kept alive, and print its ID alone "+
			"(lease=$(cpgd lease grant 30s)). With --keep, keep it alive until interrupted, then revoke it.", false)
	keep := c.fs.Bool("keep", false, "keep the lease alive until interrupted, then revoke it")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	ttl, err := time.ParseDuration(pos[0])
	if err != nil || ttl <= 0 {
		return c.usageError("TTL %q: want a duration such as 10s", pos[0])
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	if !*keep {
		info, err := cl.CreateLease(ctx, ttl)
		if err != nil {
			return err
		}
		return c.print(info, func(w io.Writer) { fmt.Fprintln(w, info.ID) })
	}
	lease, err := cl.Grant(ctx, ttl)
	if err != nil {
		return err
	}
	info := client.LeaseInfo{ID: lease.ID, TTL: lease.TTL, Expires: lease.Expires()}
	if err := c.print(info, func(w io.Writer) { fmt.Fprintln(w, info.ID) }); err != nil {
		lease.Close()
		return err
	}
	select {
	case <-lease.Done():
		return lease.Err()
	case <-ctx.Done():
	}
	revokeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return lease.Revoke(revokeCtx)
}

func verbLeaseKeepAlive(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "lease keepalive", "ID", "Renew a lease for another TTL.", false)
	pos, cl, err := c.open(args, 1, 1)
	if err != nil {
		return err
	}
	info, err := cl.KeepAliveLease(ctx, pos[0])
	if err != nil {
		return err
	}
	return c.print(info, func(w io.Writer) { leaseRow(w, info) })
}

func verbLeaseRevoke(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "lease revoke", "ID", "End a lease now: every member joined with it leaves.", false)
	pos, cl, err := c.open(args, 1, 1)
	if err != nil {
		return err
	}
	if err := cl.RevokeLease(ctx, pos[0]); err != nil {
		return err
	}
	return c.print(map[string]any{"id": pos[0], "revoked": true}, func(w io.Writer) {
		fmt.Fprintf(w, "revoked %s\n", pos[0])
	})
}

func verbLeaseShow(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCLICommand(stdout, "lease show", "ID", "Show a lease and the members joined with it.", false)
	pos, cl, err := c.open(args, 1, 1)
	if err != nil {
		return err
	}
	info, err := cl.ShowLease(ctx, pos[0])
	if err != nil {
		return err
	}
	return c.print(info, func(w io.Writer) {
		leaseRow(w, info)
		if len(info.Members) > 0 {
			fmt.Fprintln(w, "SCOPE\tGROUP\tMEMBER\tJOINS")
		}
		for _, m := range info.Members {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", m.Scope, m.Group, m.Member, m.Count)
		}
	})
}
