//go:build cpgd_norequestmetrics

package main

// A build with this tag serves the API without the request metrics, so
// that the load benchmark can measure what they cost (BENCHMARKS.md).
func init() { requestMetrics = false }
