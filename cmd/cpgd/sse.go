package main

import (
	"net/http"
	"time"
)

// sseStream writes server-sent events to one client. Writes go to the
// response's own buffer and reach the client at flush, so a batch of
// events is one write and one flush. Every flush has its own deadline: a
// client that stops reading is cut off after writeTimeout, whatever the
// server's WriteTimeout, and holds nothing of the node meanwhile.
type sseStream struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	err          error // the first write error; the stream is dead after it
}

// openStream answers 200 with the event stream's headers and a first
// heartbeat, so the client knows the stream is open before any event.
func openStream(w http.ResponseWriter, writeTimeout time.Duration) *sseStream {
	s := &sseStream{w: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout}
	// The server's read timeout is for requests; a stream reads nothing
	// more and must outlive it.
	_ = s.rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies that buffer responses must not hold events
	s.deadline()
	w.WriteHeader(http.StatusOK)
	s.heartbeat()
	return s
}

func (s *sseStream) deadline() {
	if s.err == nil {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
}

// raw writes bytes that are already one or more whole events.
func (s *sseStream) raw(b []byte) {
	if s.err == nil {
		_, s.err = s.w.Write(b)
	}
}

// event writes one event; id may be empty, data is one JSON object.
func (s *sseStream) event(id, kind string, data []byte) {
	b := make([]byte, 0, len(id)+len(kind)+len(data)+24)
	s.raw(appendEvent(b, id, kind, data))
}

func appendEvent(b []byte, id, kind string, data []byte) []byte {
	if id != "" {
		b = append(b, "id: "...)
		b = append(b, id...)
		b = append(b, '\n')
	}
	b = append(b, "event: "...)
	b = append(b, kind...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// heartbeat writes the heartbeat comment and flushes.
func (s *sseStream) heartbeat() error {
	s.deadline()
	s.raw([]byte(": heartbeat\n\n"))
	return s.flush()
}

// flush sends what was written; the deadline was set before the writes.
func (s *sseStream) flush() error {
	if s.err == nil {
		s.err = s.rc.Flush()
	}
	return s.err
}

// errorEvent is the data of a reset or overflow event.
func errorEvent(msg string) []byte {
	return append(appendJSONString(append([]byte(nil), `{"error":`...), msg), '}')
}
