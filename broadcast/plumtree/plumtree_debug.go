package plumtree

import (
	"errors"
	"slices"
	"sort"
)

// Stats counts what a Plumtree did. Sent and Received are indexed by MsgType.
type Stats struct {
	Sent     [numMsgTypes]uint64
	Received [numMsgTypes]uint64

	Delivered        uint64 // payloads a handler accepted as new
	Duplicates       uint64 // payloads a handler called a Duplicate
	KnownForwarded   uint64 // payloads a handler held by other means (Known), forwarded
	GraftsAvoided    uint64 // graft timers that found the payload held by then
	Held             uint64 // payloads the handler kept for later (Held): not forwarded yet
	GraftsSent       uint64 // grafts for a missing payload (not relinks)
	GraftMisses      uint64 // grafts we could not answer with a payload
	Optimizations    uint64 // eager links swapped for shorter lazy ones
	Unhandled        uint64 // messages for a topic without a handler
	FromStrangers    uint64 // messages other than payloads from a non-neighbour, ignored
	MissingDropped   uint64 // announcements dropped at Config.MaxMissing
	MissingExpired   uint64 // missing payloads given up after MissingTTLTicks
	LazyDropped      uint64 // announcements dropped at Config.LazyQueueLimit
	ExchangesSkipped uint64 // periodic exchanges skipped at MaxExchanges
	ExchangesLate    uint64 // exchange messages after we ended that exchange
	ExchangesRefused uint64 // exchanges not opened or refused at MaxTrackedExchanges
	ActionsFailed    uint64 // handler actions that could not be carried out
}

// Stats returns the counters so far.
func (p *Protocol) Stats() Stats { return p.stats }

// TreeResult is the answer to a tree query: the links, in the tree of Root,
// of every node that answered within the budget.
type TreeResult struct {
	Query uint64
	Root  string
	Nodes []TreeNode // sorted by name
}

// maxDoneQueriesPerSlot bounds the finished queries remembered (to answer
// late duplicates empty) relative to the queries allowed at once.
const maxDoneQueriesPerSlot = 64

type queryKey struct {
	origin string
	id     uint64
}

// treeQuery is a query this node is collecting answers for: from its
// children in the tree, to pass up to its parent (or to the caller).
type treeQuery struct {
	root     string
	parent   string // "" at the origin
	waiting  []string
	nodes    []TreeNode
	deadline int64
}

// ErrTooManyQueries reports a tree query refused at Config.MaxTreeQueries.
var ErrTooManyQueries = errors.New("plumtree: too many tree queries in progress")

// QueryTree starts collecting the tree of root across the nodes that answer
// (partisan's debug_get_tree). The query floods along eager links for root
// and each node's answer rises back the same way, so the result covers the
// connected tree around this node. The TreeResult comes out of Ready once
// every node answered or Config.TreeQueryTicks passed.
func (p *Protocol) QueryTree(root string) (uint64, error) {
	if len(p.queries) >= p.cfg.MaxTreeQueries {
		return 0, ErrTooManyQueries
	}
	p.nextQueryID++
	p.startQuery(queryKey{origin: p.self, id: p.nextQueryID}, root, "", uint32(p.cfg.TreeQueryTicks))
	return p.nextQueryID, nil
}

func (p *Protocol) startQuery(key queryKey, root, parent string, budget uint32) {
	eager, lazy := p.Peers(root)
	q := &treeQuery{
		root:     root,
		parent:   parent,
		nodes:    []TreeNode{{Name: p.self, Eager: eager, Lazy: lazy}},
		deadline: p.now + int64(budget),
	}
	// A child must answer before its parent gives up on it: one tick
	// earlier per level.
	if budget > 1 {
		for _, child := range eager {
			if child == parent {
				continue
			}
			q.waiting = append(q.waiting, child)
			p.send(child, Message{Type: MsgTreeQuery, Origin: key.origin, Query: key.id, Root: root, Budget: budget - 1})
		}
	}
	p.queries[key] = q
	if len(q.waiting) == 0 {
		p.finishQuery(key)
	}
}

func (p *Protocol) onTreeQuery(from string, m Message) {
	key := queryKey{origin: m.Origin, id: m.Query}
	_, running := p.queries[key]
	_, done := p.doneQueries[key]
	if running || done || m.Origin == p.self || len(p.queries) >= p.cfg.MaxTreeQueries ||
		len(p.doneQueries) >= maxDoneQueriesPerSlot*p.cfg.MaxTreeQueries {
		// Reached by another path (or refused): answer empty so the
		// sender does not wait, and count each node once.
		p.send(from, Message{Type: MsgTreeReply, Origin: m.Origin, Query: m.Query})
		return
	}
	p.startQuery(key, m.Root, from, m.Budget)
}

func (p *Protocol) onTreeReply(from string, m Message) {
	key := queryKey{origin: m.Origin, id: m.Query}
	q := p.queries[key]
	if q == nil || !slices.Contains(q.waiting, from) {
		return
	}
	q.waiting = slices.DeleteFunc(q.waiting, func(s string) bool { return s == from })
	for _, n := range m.Tree {
		if !slices.ContainsFunc(q.nodes, func(x TreeNode) bool { return x.Name == n.Name }) &&
			len(q.nodes) < MaxTreeNodes {
			q.nodes = append(q.nodes, n)
		}
	}
	if len(q.waiting) == 0 {
		p.finishQuery(key)
	}
}

func (p *Protocol) finishQuery(key queryKey) {
	q := p.queries[key]
	delete(p.queries, key)
	p.doneQueries[key] = p.now + int64(p.cfg.TreeQueryTicks)
	sort.Slice(q.nodes, func(i, j int) bool { return q.nodes[i].Name < q.nodes[j].Name })
	if q.parent == "" {
		p.results = append(p.results, TreeResult{Query: key.id, Root: q.root, Nodes: q.nodes})
		return
	}
	p.send(q.parent, Message{Type: MsgTreeReply, Origin: key.origin, Query: key.id, Tree: q.nodes})
}

func (p *Protocol) expireQueries() {
	if len(p.queries) == 0 {
		return
	}
	var due []queryKey
	for k, q := range p.queries {
		if q.deadline <= p.now {
			due = append(due, k)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if due[i].origin != due[j].origin {
			return due[i].origin < due[j].origin
		}
		return due[i].id < due[j].id
	})
	for _, k := range due {
		p.finishQuery(k)
	}
	for k, until := range p.doneQueries {
		if until <= p.now {
			delete(p.doneQueries, k)
		}
	}
}

// neighborDownQueries stops waiting for a lost child and drops queries whose
// parent is gone (nobody is left to answer to).
func (p *Protocol) neighborDownQueries(peer string) {
	var ready []queryKey
	for k, q := range p.queries {
		if q.parent == peer {
			delete(p.queries, k)
			p.doneQueries[k] = p.now + int64(p.cfg.TreeQueryTicks)
			continue
		}
		if slices.Contains(q.waiting, peer) {
			q.waiting = slices.DeleteFunc(q.waiting, func(s string) bool { return s == peer })
			if len(q.waiting) == 0 {
				ready = append(ready, k)
			}
		}
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i].id < ready[j].id })
	for _, k := range ready {
		p.finishQuery(k)
	}
}
