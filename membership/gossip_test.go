package membership

import "testing"

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
