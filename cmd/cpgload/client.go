package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
)

// conn is one keep-alive HTTP/1.1 connection that sends prepared requests
// and reads the answers' status and discards their bodies. It is far
// cheaper than net/http's client, so that on a small machine the load
// generator takes as little CPU from the agent as it can.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (c *conn) close() { c.c.Close() }

// request builds the bytes of one request.
func request(method, host, target, token string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// do sends req and reads the whole answer; it returns the status code.
func (c *conn) do(req []byte) (int, error) {
	if _, err := c.c.Write(req); err != nil {
		return 0, err
	}
	return c.readResponse()
}

var errBadResponse = errors.New("malformed HTTP response")

func (c *conn) readResponse() (int, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("%w: status line %q", errBadResponse, line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("%w: status line %q", errBadResponse, line)
	}
	length, chunked := -1, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		name, value, ok := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(":"))
		if !ok {
			return 0, fmt.Errorf("%w: header %q", errBadResponse, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, fmt.Errorf("%w: Content-Length %q", errBadResponse, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	switch {
	case status == 204 || status == 304 || status < 200:
		return status, nil // no body, whatever the headers say
	case chunked:
		return status, c.skipChunks()
	case length >= 0:
		_, err = c.r.Discard(length)
		return status, err
	default:
		return 0, fmt.Errorf("%w: neither a length nor chunks", errBadResponse)
	}
}

func (c *conn) skipChunks() error {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
		if err != nil {
			return fmt.Errorf("%w: chunk size %q", errBadResponse, line)
		}
		if _, err := c.r.Discard(int(size) + 2); err != nil { // the chunk and its CRLF
			return err
		}
		if size == 0 {
			return nil
		}
	}
}

// stream opens a server-sent event stream and counts its events until the
// connection ends; it returns once the answer's headers are in.
func stream(addr, target, token string, events *countingReader) (*conn, int, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, 0, err
	}
	if _, err := c.c.Write(request("GET", addr, target, token, nil)); err != nil {
		c.close()
		return nil, 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil || len(line) < 12 {
		c.close()
		return nil, 0, fmt.Errorf("watch %s: %w (%q)", target, errBadResponse, line)
	}
	status, _ := strconv.Atoi(string(line[9:12]))
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			c.close()
			return nil, 0, err
		}
		if len(line) <= 2 {
			break
		}
	}
	events.r = c.r
	return c, status, nil
}

// countingReader counts the events of a stream as it reads it in large
// pieces (an event split between two reads is missed: the count is a
// lower bound, close enough to tell a stream that keeps up).
type countingReader struct {
	r      io.Reader
	events atomic.Int64
}

// lastChunk ends a chunked answer: the stream is over even though the
// connection stays open for the next request.
var lastChunk = []byte("\r\n0\r\n\r\n")

// drain reads until the stream ends: the connection closes or the answer's
// last chunk comes.
func (cr *countingReader) drain() {
	buf := make([]byte, 32<<10)
	var tail []byte // the last bytes read, for a last chunk split across reads
	for {
		n, err := cr.r.Read(buf)
		cr.events.Add(int64(bytes.Count(buf[:n], []byte("event: "))))
		tail = append(tail, buf[:n]...)
		if bytes.HasSuffix(tail, lastChunk) {
			return
		}
		if len(tail) > len(lastChunk) {
			tail = append(tail[:0], tail[len(tail)-len(lastChunk):]...)
		}
		if err != nil {
			return
		}
	}
}
