package membership

// EventType says what an Event reports.
type EventType int

const (
	// LinkUp: a peer entered the active view; Send to it now works.
	LinkUp EventType = iota + 1
	// LinkDown: a peer left the active view; Reason says why.
	LinkDown
	// Message: a peer sent an application payload over the active link.
	Message
)

func (t EventType) String() string {
	switch t {
	case LinkUp:
		return "link-up"
	case LinkDown:
		return "link-down"
	case Message:
		return "message"
	default:
		return "unknown"
	}
}

// Event is what the overlay tells its single consumer (the broadcast layer):
// the links it gained and lost, and the payloads its peers sent.
type Event struct {
	Type    EventType
	Peer    Peer
	Reason  string // LinkDown only
	Payload []byte // Message only
	// Reset (LinkUp only): the link replaced one to the same peer whose
	// frames in flight may be lost, and the LinkDown before it says why.
	// The peer may not have been told: the consumer compares state with it
	// whichever end it is.
	Reset bool
}
