// Package membership keeps this node in the cluster's overlay: HyParView as a
// pure state machine (small active view of TCP links, larger passive view of
// spare contacts), the framed and authenticated TCP transport that drives it,
// keepalives with RTT-adaptive timeouts on the active links, and memberlist
// for the first contact and the cluster-wide verdict on node deaths.
package membership
