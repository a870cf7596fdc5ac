package plumtree

import "fmt"

// MsgType names a Plumtree message.
type MsgType uint8

const (
	// MsgGossip carries a payload: Topic, ID, Root, Round, Siblings,
	// Payload.
	MsgGossip MsgType = iota + 1
	// MsgIHave announces payloads the sender has: IHaves.
	MsgIHave
	// MsgGraft asks the receiver to make the link eager for Root and, if ID
	// is set, to send that payload (Topic, ID, Round). An empty ID only
	// relinks (the optimisation step).
	MsgGraft
	// MsgPrune asks the receiver to make the link lazy for Root.
	MsgPrune
	// MsgExchange is one step of anti-entropy: Topic, Exchange, Step, Payload.
	MsgExchange
	// MsgTreeQuery asks for the eager tree of Root: Origin, Query, Root, Budget.
	MsgTreeQuery
	// MsgTreeReply answers a tree query with a subtree: Origin, Query, Tree.
	MsgTreeReply
	// MsgExchangeEnd ends an exchange: Topic, Exchange, Step (the step its
	// sender would have sent next, whose parity says whose exchange it is).
	// The end that stops (its handler had nothing to answer, it cancelled,
	// or it refused the exchange) sends it, so the other end frees the
	// exchange at once instead of at the timeout.
	MsgExchangeEnd

	numMsgTypes
)

var msgTypeNames = [...]string{
	MsgGossip:      "GOSSIP",
	MsgIHave:       "IHAVE",
	MsgGraft:       "GRAFT",
	MsgPrune:       "PRUNE",
	MsgExchange:    "EXCHANGE",
	MsgTreeQuery:   "TREE-QUERY",
	MsgTreeReply:   "TREE-REPLY",
	MsgExchangeEnd: "EXCHANGE-END",
}

func (t MsgType) String() string {
	if t > 0 && t < numMsgTypes {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// Message is every Plumtree message; Type says which fields are in use (see
// the MsgType constants). Only those fields travel on the wire.
type Message struct {
	Type  MsgType
	Topic string
	ID    []byte
	Root  string // the node whose tree the message concerns
	Round uint32 // hops from Root at the receiver
	// Siblings: gossip, the peers the root pushed this same copy to (the
	// receiver among them), on the root's own copies (Round 1) to two
	// peers or more.
	Siblings []string
	Payload  []byte // gossip payload, or exchange data
	IHaves   []Announcement

	Exchange uint64 // exchange id, chosen by the initiator
	Step     uint32 // exchange step: even from the initiator, odd from the responder

	Origin string // tree queries: the querying node
	Query  uint64 // tree queries: the origin's query id
	Budget uint32 // tree queries: ticks left for the receiver's subtree
	Tree   []TreeNode
}

// Announcement is one IHAVE entry: the sender has ID, and the receiver would
// be Round hops from Root if it took the payload over this link.
type Announcement struct {
	Topic string
	ID    []byte
	Root  string
	Round uint32
}

// TreeNode is one node's links in the tree of a root.
type TreeNode struct {
	Name  string
	Eager []string
	Lazy  []string
}

// Envelope is a message and the neighbour it goes to.
type Envelope struct {
	To  string
	Msg Message
}

func (m Message) String() string {
	switch m.Type {
	case MsgGossip:
		return fmt.Sprintf("GOSSIP %s/%s root=%s round=%d", m.Topic, m.ID, m.Root, m.Round)
	case MsgIHave:
		s := "IHAVE"
		for _, a := range m.IHaves {
			s += fmt.Sprintf(" %s/%s(root=%s,round=%d)", a.Topic, a.ID, a.Root, a.Round)
		}
		return s
	case MsgGraft:
		if len(m.ID) == 0 {
			return fmt.Sprintf("GRAFT root=%s (relink)", m.Root)
		}
		return fmt.Sprintf("GRAFT %s/%s root=%s round=%d", m.Topic, m.ID, m.Root, m.Round)
	case MsgPrune:
		return fmt.Sprintf("PRUNE root=%s", m.Root)
	case MsgExchange:
		return fmt.Sprintf("EXCHANGE %s id=%d step=%d %q", m.Topic, m.Exchange, m.Step, m.Payload)
	case MsgExchangeEnd:
		return fmt.Sprintf("EXCHANGE-END %s id=%d step=%d", m.Topic, m.Exchange, m.Step)
	case MsgTreeQuery:
		return fmt.Sprintf("TREE-QUERY %s#%d root=%s budget=%d", m.Origin, m.Query, m.Root, m.Budget)
	case MsgTreeReply:
		return fmt.Sprintf("TREE-REPLY %s#%d nodes=%d", m.Origin, m.Query, len(m.Tree))
	}
	return m.Type.String()
}
