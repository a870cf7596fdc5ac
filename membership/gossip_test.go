package membership

import (
	"bytes"
	"io"
	"log"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestMemberlistDoesNotCompress: memberlist's compression allocates a
// 64 KiB LZW table per packet sent, which made it the largest allocation
// of a node and a good share of its garbage collections (the collector's
// pauses and assists land on a change's path), for packets of a few
// hundred bytes on a LAN. The node's memberlist sends them as they are.
// A node that compresses is still understood: memberlist decompresses
// what arrives compressed whatever its own setting.
func TestMemberlistDoesNotCompress(t *testing.T) {
	mc := memberlistConfig(testNodeConfig("a"), "a", "127.0.0.1", 0)
	if mc.EnableCompression {
		t.Fatal("memberlist compresses its packets")
	}
}

// TestGossipPacketsGetBuffersOfTheirSize: memberlist's own transport
// allocated 64 KiB for every packet it received, whatever its size; the
// node's transport hands memberlist each packet in a buffer of its own
// size, and whole.
func TestGossipPacketsGetBuffersOfTheirSize(t *testing.T) {
	tr, err := listenGossip(net.IPv4(127, 0, 0, 1), 0, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown()
	ip, port, err := tr.FinalAdvertiseAddr("", 0)
	if err != nil {
		t.Fatal(err)
	}
	to := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	for _, size := range []int{1, 300, 1400, 9000} {
		sent := bytes.Repeat([]byte{byte(size)}, size)
		if _, err := tr.WriteTo(sent, to); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-tr.PacketCh():
			if !bytes.Equal(p.Buf, sent) {
				t.Fatalf("sent %d bytes, received %d", size, len(p.Buf))
			}
			if cap(p.Buf) > max(2*size, 64) {
				t.Errorf("a packet of %d bytes came in a buffer of %d", size, cap(p.Buf))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the packet of %d bytes never came", size)
		}
	}
}
