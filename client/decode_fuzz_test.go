package client

import (
	"encoding/json"
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// FuzzAnswers feeds the decoders of the agent's answers arbitrary bodies:
// they return a value or an error, never panic, and an error message keeps
// to its bound.
func FuzzAnswers(f *testing.F) {
	f.Add([]byte(`{"id":"L1","ttl":"10s","expires":"2026-01-02T03:04:05Z","members":[{"scope":"s","group":"/g","member":"m","count":1}]}`))
	f.Add([]byte(`{"error":"no lease \"x\""}`))
	f.Add([]byte(`{"ttl":1e400}`))
	f.Add([]byte("\xff\xfe plain text"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var l LeaseInfo
		if json.Unmarshal(body, &l) == nil {
			_, err := json.Marshal(l)
			require.NoError(t, err)
		}
		e := responseError("GET", "/v1/x", &http.Response{StatusCode: 500}, body)
		if !json.Valid(body) && utf8.Valid(body) {
			require.LessOrEqual(t, len(e.Message), maxMessage+3)
		}
		_ = e.Error()
	})
}
