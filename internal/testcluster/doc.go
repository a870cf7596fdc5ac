// Package testcluster runs registry nodes in one process over real
// loopback TCP, under a network the test controls: per directed link it
// drops, delays and duplicates the broadcast layer's messages; it
// partitions nodes (their overlay connections stop carrying bytes, their
// dials hang, and memberlist's packets are lost, so the failure detector
// sees the partition as a real one); and it stops, restarts and kills
// nodes (a kill closes the node's sockets as a crash does, and nothing it
// would say on the way out reaches anyone).
//
// Every random choice the harness makes is drawn from the seed it is
// given, so a failing schedule can be rerun; the network's timing is the
// machine's.
package testcluster
