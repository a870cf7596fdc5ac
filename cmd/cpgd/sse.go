package main

import (
	"net"
	"net/http"
	"strconv"
	"time"
)

// sseStream writes server-sent events to one client. Events are gathered
// by reference (an event's bytes are shared by every stream that sends it
// and never copied per stream) and reach the client at flush, as one
// chunk of the response in one write: on an HTTP/1.1 connection the
// stream takes the connection over once the headers are out and writes
// each chunk with writev, so that a batch of a thousand events costs the
// node one system call and one pass through the kernel's TCP stack, not
// one per few kilobytes as the server's own buffers would. Every flush
// has its own deadline: a client that stops reading is cut off after
// writeTimeout, whatever the server's WriteTimeout, and holds nothing of
// the node meanwhile.
//
// A stream must be ended with end, which finishes the response.
type sseStream struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	err          error // the first write error; the stream is dead after it

	// pending is the next chunk: a slot for its size line, then its
	// events by reference (the very array handed to writev).
	pending net.Buffers
	// Set once the stream owns its connection (writev path).
	conn     net.Conn
	gone     chan struct{} // closed when the client closes the connection
	writing  net.Buffers
	head     []byte
	hub      *watchHub
	released bool
}

// openStream answers 200 with the event stream's headers and a first
// heartbeat, so the client knows the stream is open before any event,
// then takes the connection over when the server allows it (HTTP/1.1);
// otherwise the stream writes through the ResponseWriter.
func openStream(w http.ResponseWriter, r *http.Request, writeTimeout time.Duration, hub *watchHub) *sseStream {
	s := &sseStream{w: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout}
	// The server's read timeout is for requests; a stream reads nothing
	// more and must outlive it.
	_ = s.rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies that buffer responses must not hold events
	// Only a chunked HTTP/1.1 answer to a GET can be taken over; the
	// connection is then the stream's and is not reused after it.
	takeOver := r.Method == http.MethodGet && r.ProtoMajor == 1 && r.ProtoMinor >= 1
	if takeOver {
		h.Set("Connection", "close")
	}
	s.deadline()
	w.WriteHeader(http.StatusOK)
	if s.heartbeat() == nil && takeOver {
		s.takeOver(hub)
	}
	return s
}

// takeOver hijacks the connection once the headers and the first chunk
// are out: the response is chunked from then on, and the stream goes on
// writing chunks itself.
func (s *sseStream) takeOver(hub *watchHub) {
	conn, brw, err := s.rc.Hijack()
	if err != nil {
		return // HTTP/2 or a test recorder: write through the server
	}
	s.conn, s.gone, s.hub = conn, make(chan struct{}), hub
	_ = conn.SetReadDeadline(time.Time{})
	// The server no longer tells the handler when the client goes: a
	// read that fails does.
	go func() {
		defer close(s.gone)
		var b [64]byte
		for {
			if _, err := brw.Read(b[:]); err != nil {
				return
			}
		}
	}()
	if hub != nil {
		hub.track(s)
	}
}

// closed is closed when the client is gone, if the stream can tell
// (nil otherwise: the request's context says it then).
func (s *sseStream) closed() <-chan struct{} { return s.gone }

func (s *sseStream) deadline() {
	if s.err != nil {
		return
	}
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		return
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
}

// raw adds bytes that are one or more whole events to the next chunk. They
// are not copied: they must not change until the flush.
func (s *sseStream) raw(b []byte) {
	if s.err == nil && len(b) > 0 {
		if len(s.pending) == 0 {
			s.pending = append(s.pending, nil) // the size line's slot
		}
		s.pending = append(s.pending, b)
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

var heartbeatComment = []byte(": heartbeat\n\n")

// heartbeat writes the heartbeat comment and flushes.
func (s *sseStream) heartbeat() error {
	s.deadline()
	s.raw(heartbeatComment)
	return s.flush()
}

var crlf = []byte("\r\n")

// flush sends what was written as one chunk; the deadline was set before.
func (s *sseStream) flush() error {
	if s.err != nil || len(s.pending) == 0 {
		s.drop()
		return s.err
	}
	if s.conn == nil {
		for _, b := range s.pending[1:] {
			if _, s.err = s.w.Write(b); s.err != nil {
				break
			}
		}
		if s.err == nil {
			s.err = s.rc.Flush()
		}
		s.drop()
		return s.err
	}
	size := 0
	for _, b := range s.pending[1:] {
		size += len(b)
	}
	s.head = strconv.AppendUint(s.head[:0], uint64(size), 16)
	s.head = append(s.head, crlf...)
	s.pending[0] = s.head
	s.pending = append(s.pending, crlf)
	// WriteTo consumes its receiver: give it a copy of the slice header
	// (a field, so that it does not escape) to keep the array for the
	// next flush.
	s.writing = s.pending
	_, s.err = s.writing.WriteTo(s.conn)
	s.writing = nil
	s.drop()
	return s.err
}

// drop forgets the chunk: the events' bytes are not held past their write.
func (s *sseStream) drop() {
	clear(s.pending)
	s.pending = s.pending[:0]
	if cap(s.pending) > maxKeptBatch {
		s.pending = nil // a burst's array is not kept for the stream's life
	}
}

// end finishes the response: on a connection the stream owns, the last
// chunk, then the connection closes. The handler returns after it.
func (s *sseStream) end() {
	if s.conn == nil {
		return
	}
	if s.err == nil {
		s.deadline()
		_, s.err = s.conn.Write([]byte("0\r\n\r\n"))
	}
	_ = s.conn.Close()
	<-s.gone
	if s.hub != nil {
		s.hub.untrack(s)
	}
}

// cut closes the connection of a stream that outlived the agent's drain.
func (s *sseStream) cut() { _ = s.conn.Close() }

// errorEvent is the data of a reset or overflow event.
func errorEvent(msg string) []byte {
	return append(appendJSONString(append([]byte(nil), `{"error":`...), msg), '}')
}

// maxKeptBatch is the most events a stream's batch arrays keep room for
// between writes: a stream of a busy group reuses them, write after write,
// instead of allocating them again (a thousand such streams kept the
// garbage collector busy), and a rare burst's room is given back.
const maxKeptBatch = 1024
