package crdt

// memberHash is the key of (node, id) in a group's index. Unlike the
// hashes of hash.go it never leaves the replica, so it is free to trade
// FNV's byte at a time for eight bytes per multiply: every join and leave
// of a group past indexThreshold computes it, twice for a new member (the
// lookup that misses, then the insert). A collision costs only speed
// (Group.indexCollided).
func memberHash(node, id string) uint64 {
	h := wordHash(mixWord(fnvOffset, uint64(len(node))), node)
	h = wordHash(mixWord(h, uint64(len(id))), id)
	return avalanche(h)
}

// wordHash mixes s into h eight bytes at a time.
func wordHash(h uint64, s string) uint64 {
	for len(s) >= 8 {
		h = mixWord(h, uint64(s[0])|uint64(s[1])<<8|uint64(s[2])<<16|uint64(s[3])<<24|
			uint64(s[4])<<32|uint64(s[5])<<40|uint64(s[6])<<48|uint64(s[7])<<56)
		s = s[8:]
	}
	if len(s) == 0 {
		return h
	}
	var w uint64
	for i := range len(s) {
		w |= uint64(s[i]) << (8 * i)
	}
	return mixWord(h, w)
}

func mixWord(h, w uint64) uint64 {
	h = (h ^ w) * 0x9e3779b97f4a7c15
	return h ^ h>>29
}
