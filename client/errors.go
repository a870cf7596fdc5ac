package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Error is an answer of the agent other than 200: its status code and the
// message of its JSON error body. errors.Is matches it against the
// sentinel of its status (ErrNotFound for a 404, ...).
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Message is the agent's explanation (the "error" field of its
	// answer), or the start of the body when it was not JSON.
	Message string
	// Method and Path name the call that failed.
	Method, Path string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// Is reports whether target is the sentinel error of e's status.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Status]
	return ok && s == target
}

// Sentinel errors, one per status the API answers with; match them with
// errors.Is.
var (
	// ErrBadRequest: malformed input (a bad name, pattern, JSON, query).
	ErrBadRequest = errors.New("cpgd: bad request")
	// ErrUnauthorized: the agent wants a token and got none or a wrong one.
	ErrUnauthorized = errors.New("cpgd: unauthorized")
	// ErrForbidden: the agent refused the request's origin.
	ErrForbidden = errors.New("cpgd: forbidden")
	// ErrNotFound: no such scope, group, member, eligible member or lease.
	ErrNotFound = errors.New("cpgd: not found")
	// ErrConflict: the request conflicts with the agent's state.
	ErrConflict = errors.New("cpgd: conflict")
	// ErrTooLarge: the body or a name is over the agent's limit.
	ErrTooLarge = errors.New("cpgd: too large")
	// ErrTooManyRequests: a limit (watches, scopes) is reached.
	ErrTooManyRequests = errors.New("cpgd: too many requests")
	// ErrUnavailable: the agent is not ready or is shutting down.
	ErrUnavailable = errors.New("cpgd: unavailable")
)

var sentinels = map[int]error{
	http.StatusBadRequest:            ErrBadRequest,
	http.StatusUnauthorized:          ErrUnauthorized,
	http.StatusForbidden:             ErrForbidden,
	http.StatusNotFound:              ErrNotFound,
	http.StatusConflict:              ErrConflict,
	http.StatusRequestEntityTooLarge: ErrTooLarge,
	http.StatusTooManyRequests:       ErrTooManyRequests,
	http.StatusServiceUnavailable:    ErrUnavailable,
}

// maxMessage bounds the part of a non-JSON error body an Error keeps.
const maxMessage = 200

// responseError turns a non-200 answer into an *Error, taking the message
// from the JSON error body the API promises, or else from the raw body.
func responseError(method, path string, resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, Method: method, Path: path}
	var eb struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		e.Message = eb.Error
		return e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
		msg += "..."
	}
	e.Message = msg
	return e
}
