package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// frame is one server-sent event: the fields of the lines before a blank
// line.
type frame struct {
	event string
	data  string
	id    string
	hasID bool
}

// maxFrame bounds one event (all its lines): the largest member the API
// sends is far smaller, and a confused server cannot make the client
// buffer without limit.
const maxFrame = 1 << 20

var errFrameTooLarge = fmt.Errorf("server-sent event larger than %d bytes", maxFrame)

// sseReader splits a text/event-stream into frames, as the HTML standard
// says: lines end with LF or CRLF, a line starting with a colon is a
// comment (heartbeats), "field: value" loses one space after the colon,
// data lines join with LF, and a blank line ends the frame. Frames with
// neither data nor event (a lone comment) are skipped.
type sseReader struct {
	r *bufio.Reader
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 16<<10)}
}

// next returns the next frame; io.EOF when the stream ends cleanly between
// frames, io.ErrUnexpectedEOF when it ends inside one.
func (s *sseReader) next() (frame, error) {
	var f frame
	var data bytes.Buffer
	size, started, hasData := 0, false, false
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && started {
				return frame{}, io.ErrUnexpectedEOF
			}
			return frame{}, err
		}
		size += len(line) + 1
		if size > maxFrame {
			return frame{}, errFrameTooLarge
		}
		if len(line) == 0 {
			if hasData || f.event != "" {
				f.data = data.String()
				return f, nil
			}
			started, f, size = false, frame{}, 0
			continue
		}
		started = true
		if line[0] == ':' {
			continue
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(name) {
		case "event":
			f.event = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		case "id":
			// The standard ignores an id holding NUL.
			if bytes.IndexByte(value, 0) < 0 {
				f.id, f.hasID = string(value), true
			}
		}
	}
}

// readLine returns one line without its end; a line longer than maxFrame
// is an error.
func (s *sseReader) readLine() ([]byte, error) {
	var long []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if err == nil {
			line := chunk
			if long != nil {
				line = append(long, chunk...)
			}
			line = bytes.TrimSuffix(line, []byte("\n"))
			return bytes.TrimSuffix(line, []byte("\r")), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			// The stream ended: a last line without its end does not
			// count, as the standard says.
			return nil, err
		}
		if len(long)+len(chunk) > maxFrame {
			return nil, errFrameTooLarge
		}
		long = append(long, chunk...)
	}
}
