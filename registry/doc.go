// Package registry is cpg's public Go API: a process-group registry in the
// manner of Erlang's pg and CloudI's CPG. Services join named groups inside
// scopes; any node looks up a group's members, picks one (closest, random,
// oldest, ...) and watches joins and leaves.
//
// Each node owns the members it registered; the registry on every node is a
// replica of the crdt package's owner-authoritative state, which the
// replication layer keeps in step through Node's replication port (ApplyOp,
// Digest, Delta, Merge, Tombstone, Config.OnLocalOp and Config.OnLocalState).
//
// Group names are strings, by convention paths such as "/svc/db/eu". A name
// with a wildcard is a pattern with CPG's semantics: "*" matches one or more
// characters and may cross "/"; "?" matches one or more characters up to
// the next literal character of the pattern. A lookup names a concrete group
// and gets the most specific stored group that matches it: the exact name
// if stored, else the pattern whose alignment with the name is the most
// literal from the left.
//
// Lookups are the hot path: an exact lookup takes no lock once the group's
// snapshot is built, and the members it returns are shared, not copied.
package registry
