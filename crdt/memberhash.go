package crdt

// memberHash is the key of (node, id) in a group's index. Unlike the
// hashes of hash.go it never leaves the replica, but it is as hot: every
// join and leave of a group past indexThreshold computes it, twice for a
// new member (the lookup that misses, then the insert). A collision costs
// only speed (Group.indexCollided).
func memberHash(node, id string) uint64 {
	return avalanche(wordField(wordField(hashSeed, node), id))
}
