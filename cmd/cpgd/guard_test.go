package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNotJSON(t *testing.T) {
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"} {
		require.Empty(t, notJSON(ct), "%q is JSON", ct)
	}
	for _, ct := range []string{"", "text/plain", "application/jsonx", "application/json; charset=latin1", "application/json; charset=", "multipart/form-data; boundary=x"} {
		require.NotEmpty(t, notJSON(ct), "%q is not JSON", ct)
	}
}

// The content type every client sends is accepted without parsing it into
// a map: the guard runs on every request.
func TestNotJSONOfPlainJSONAllocatesNothing(t *testing.T) {
	if raceDetector {
		t.Skip("allocations mean nothing under the race detector")
	}
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = notJSON("application/json") }))
}
