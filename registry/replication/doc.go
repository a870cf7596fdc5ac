// Package replication is the registry's replication core: the Plumtree
// handler that carries one crdt.State's operations to every node and keeps
// replicas in step by anti-entropy. It is pure (no goroutines, sockets or
// clock) so that the registry node and the simulator drive the very same
// code; a Replica is not safe for concurrent use.
//
// What travels, on the Plumtree topic Topic:
//
//   - An owner's op, broadcast on the owner's own tree with the id
//     (owner, incarnation, seq).
//   - An owner's whole state, on the owner's tree with the id of its latest
//     op: what a replica passes on after an exchange moved that owner
//     forward (so a heal spreads in a tree, not one exchange per hop), a
//     graft rebuilt from state, and a refute (a new incarnation announced
//     as one state).
//
// The replica is Plumtree's dedupe oracle: an op or state that moves its
// owner forward is new; one this replica already holds is a duplicate; an op
// ahead of a gap waits in the CRDT's buffer, is forwarded once, and makes
// the replica pull that owner from the peer that sent it at once.
//
// Anti-entropy compares hashes before it sends entries: the opener sends the
// fingerprint of its whole digest (a few dozen bytes); a peer that differs
// answers with the hashes of crdt.DigestBuckets buckets of owners; the
// opener sends its digest lines for the buckets that differ; the peer
// answers with the owners the opener lacks and its own lines; the opener
// answers with what the peer lacks. Converged peers therefore exchange two
// short messages, whatever the number of owners.
package replication
