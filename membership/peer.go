package membership

import "github.com/cpggo/cpg/membership/hyparview"

// Peer identifies a node of the overlay: its unique name and the address of
// its overlay listener. It is the protocol core's type.
type Peer = hyparview.Peer
