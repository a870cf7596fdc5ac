// Package registry is cpg's public Go API: a process-group registry in the
// manner of Erlang's pg and CloudI's CPG. Services join named groups inside
// scopes; any node looks up a group's members, picks one (closest, random,
// oldest, ...) and watches joins and leaves.
//
// Each node owns the members it registered; the registry on every node is a
// replica of the crdt package's owner-authoritative state. A node on its own
// (Config.Cluster nil) serves one process; with Config.Cluster set it runs
// the failure detector (memberlist), the HyParView overlay and Plumtree, and
// keeps its replica in step with every other node's through the pure
// replication core of registry/replication: each owner's operations travel
// down Plumtree trees, gaps are pulled, and digests are compared whenever a
// link comes up and at every exchange tick. A node that leaves (Close) or
// dies has its members dropped on every other node.
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
//
// Applying another node's join allocates a few hundred bytes (240, or 430
// with a watch open on its group, in BenchmarkApplyBurst's 200-group
// burst), so a burst of thousands of remote joins
// can bring on a garbage collection in a program whose heap is only a few
// MB, and a collection during a burst about doubles the CPU the burst
// costs that process (BENCHMARKS.md). Such a program can raise GOGC or set
// GOMEMLIMIT (runtime/debug.SetGCPercent, SetMemoryLimit); cpgd runs at
// GOGC 400 for this reason.
package registry
