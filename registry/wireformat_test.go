package registry_test

import (
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpggo/cpg/broadcast/plumtree"
	"github.com/cpggo/cpg/crdt"
	"github.com/cpggo/cpg/membership"
	"github.com/cpggo/cpg/membership/hyparview"
	"github.com/cpggo/cpg/registry/replication"
)

var updateWire = flag.Bool("update-wire", false, "write testdata/wire/v<ProtocolVersion>.txt from the current encodings")

// Two nodes agree on what crosses the overlay only if they speak one
// protocol version: the handshake refuses a peer of another version, so
// it is never misread. That holds only if every change to a format
// carried over the overlay comes with a new version. This test pins the
// encodings of one canonical value of each (the overlay's messages, the
// broadcast's, the registry's payloads and the hashes its digests
// compare) to the version: a format that changes while
// membership.ProtocolVersion stays fails it. (membership's own frames and
// handshake are versioned beside the constant, in its package.)
// After bumping the version, record the new encodings with
//
//	go test ./registry -run TestWireFormatsAreVersioned -update-wire
//
// and the same, under the current version, after pinning a format here
// that was not before.
func TestWireFormatsAreVersioned(t *testing.T) {
	path := filepath.Join("testdata", "wire", fmt.Sprintf("v%d.txt", membership.ProtocolVersion))
	got := canonicalEncodings(t)
	if *updateWire {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no recorded encodings for protocol version %d (%v): record them with -update-wire", membership.ProtocolVersion, err)
	}
	gotLines, wantLines := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gotLines), len(wantLines)) {
		g, w := line(gotLines, i), line(wantLines, i)
		if g != w {
			t.Fatalf("an encoding carried over the overlay changed while the protocol version stayed %d:\n  recorded: %s\n  now:      %s\n"+
				"bump membership.ProtocolVersion, so that nodes of the two formats refuse each other, and record the new encodings with -update-wire",
				membership.ProtocolVersion, w, g)
		}
	}
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(none)"
}

// canonicalEncodings is one line per format: its name and the hex of its
// encoding.
func canonicalEncodings(t *testing.T) string {
	var b strings.Builder
	add := func(name string, enc []byte) { fmt.Fprintf(&b, "%s %s\n", name, hex.EncodeToString(enc)) }

	peer := hyparview.Peer{Name: "a", Addr: "127.0.0.1:7946"}
	for _, m := range []hyparview.ProtocolMessage{
		hyparview.MsgJoin{Epoch: 3},
		hyparview.MsgForwardJoin{Joiner: peer, TTL: 6},
		hyparview.MsgDisconnect{Epoch: 4},
		hyparview.MsgNeighbor{High: true, Epoch: 5},
		hyparview.MsgNeighborReply{Accept: true, Epoch: 5, Link: 6},
		hyparview.MsgShuffle{Origin: peer, TTL: 5, Peers: []hyparview.Peer{{Name: "b", Addr: "127.0.0.1:7947"}}},
		hyparview.MsgShuffleReply{Peers: []hyparview.Peer{{Name: "c", Addr: "127.0.0.1:7948"}}},
	} {
		typ, body := hyparview.EncodeMessage(m)
		add(fmt.Sprintf("overlay %T", m), append([]byte{typ}, body...))
	}

	for _, m := range []plumtree.Message{
		{Type: plumtree.MsgGossip, Topic: "t", ID: []byte{1, 2}, Root: "a", Round: 1, Siblings: []string{"b", "c"}, Payload: []byte("p")},
		{Type: plumtree.MsgIHave, IHaves: []plumtree.Announcement{{Topic: "t", ID: []byte{1}, Root: "a", Round: 2}, {Topic: "t", ID: []byte{2}, Root: "a", Round: 3}}},
		{Type: plumtree.MsgGraft, Topic: "t", ID: []byte{1}, Root: "a", Round: 2},
		{Type: plumtree.MsgPrune, Root: "a"},
		{Type: plumtree.MsgExchange, Topic: "t", Exchange: 7, Step: 2, Payload: []byte("d")},
		{Type: plumtree.MsgExchangeEnd, Topic: "t", Exchange: 7, Step: 3},
		{Type: plumtree.MsgTreeQuery, Origin: "o", Query: 9, Root: "a", Budget: 5},
		{Type: plumtree.MsgTreeReply, Origin: "o", Query: 9, Tree: []plumtree.TreeNode{{Name: "a", Eager: []string{"b"}, Lazy: []string{"c"}}}},
	} {
		add("broadcast "+m.Type.String(), plumtree.AppendMessage(nil, m))
	}

	owner := crdt.New(crdt.Config{Self: "n1", Incarnation: 5})
	ops := []crdt.Op{
		owner.LocalJoin("default", "/svc/db", "db-1", 1, crdt.Meta{"addr": "10.0.0.7:5432", "zone": "a"}, 1_000),
		owner.LocalJoin("default", "/svc/db", "db-2", 2, nil, 2_000),
	}
	left, err := owner.LocalLeave("default", "/svc/db", "db-2", 1)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := owner.LocalSetMeta("default", "/svc/db", "db-1", crdt.Meta{"addr": "10.0.0.8:5432"})
	if err != nil {
		t.Fatal(err)
	}
	ops = append(ops, left, meta)
	add("registry op", replication.OpPayload(&ops[0]))
	for i, bt := range replication.Batches(ops, 1<<20) {
		add(fmt.Sprintf("registry batch %d", i), bt.Payload)
	}
	add("registry batch of op encodings", replication.BatchPayload(ops))
	st, _ := owner.OwnerState("n1")
	add("registry owner state", replication.StatePayload(&st))

	replica := crdt.New(crdt.Config{Self: "n2", Incarnation: 9})
	for i := range ops {
		replica.Apply(&ops[i])
	}
	replica.LocalJoin("default", "/svc/web", "web-1", 1, nil, 3_000)
	replica.Tombstone("n3", 4, 4_000)
	dg := replica.Digest()
	add("crdt digest", crdt.AppendDigest(nil, &dg))
	add("crdt summary", crdt.AppendSummary(nil, replica.Summary()))
	// The fingerprints an exchange compares first: the hash functions
	// are part of the protocol too.
	var used []byte
	for i, h := range replica.BucketHashes() {
		if h != 0 {
			used = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint16(used, uint16(i)), h)
		}
	}
	add("crdt bucket hashes in use", used)
	dl := replica.Snapshot()
	add("crdt delta", crdt.AppendDelta(nil, &dl))
	return b.String()
}
