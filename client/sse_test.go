package client

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func readFrames(t *testing.T, stream string) ([]frame, error) {
	t.Helper()
	r := newSSEReader(strings.NewReader(stream))
	var out []frame
	for {
		f, err := r.next()
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
}

func TestSSEReaderSplitsFrames(t *testing.T) {
	for _, c := range []struct {
		name, stream string
		want         []frame
		err          error
	}{
		{"a change", "id: e1-2\nevent: join\ndata: {\"group\":\"/a\"}\n\n",
			[]frame{{id: "e1-2", hasID: true, event: "join", data: `{"group":"/a"}`}}, io.EOF},
		{"heartbeats are skipped", ": heartbeat\n\nevent: synced\ndata: {}\n\n: heartbeat\n\n",
			[]frame{{event: "synced", data: "{}"}}, io.EOF},
		{"CRLF line ends", "event: leave\r\ndata: x\r\n\r\n",
			[]frame{{event: "leave", data: "x"}}, io.EOF},
		{"data lines join with LF", "data: a\ndata: b\n\n", []frame{{data: "a\nb"}}, io.EOF},
		{"one space after the colon is dropped, no more", "event:join\ndata:  x\n\n",
			[]frame{{event: "join", data: " x"}}, io.EOF},
		{"an id holding NUL is ignored", "id: a\x00b\nevent: join\ndata: x\n\n",
			[]frame{{event: "join", data: "x"}}, io.EOF},
		{"unknown fields are ignored", "retry: 10\nevent: join\nfoo\ndata: x\n\n",
			[]frame{{event: "join", data: "x"}}, io.EOF},
		{"a frame cut short", "event: join\ndata: x\n", nil, io.ErrUnexpectedEOF},
		{"a last line without its end", "event: join\ndata: x", nil, io.ErrUnexpectedEOF},
		{"a frame over the limit", "data: " + strings.Repeat("x", maxFrame) + "\n\n", nil, errFrameTooLarge},
		{"many lines over the limit", strings.Repeat("data: "+strings.Repeat("x", 1000)+"\n", maxFrame/1000+1) + "\n", nil, errFrameTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := readFrames(t, c.stream)
			require.True(t, errors.Is(err, c.err), "error %v, want %v", err, c.err)
			require.Equal(t, c.want, got)
		})
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add("id: e1-2\nevent: join\ndata: {\"group\":\"/a\",\"member\":{\"id\":\"m\"}}\n\n")
	f.Add(": heartbeat\n\nevent: reset\ndata: {\"error\":\"x\"}\n\n")
	f.Add("event: member\r\ndata: {}\r\n\r\nid: 7\nevent: synced\ndata: {}\n\n")
	f.Fuzz(func(t *testing.T, stream string) {
		r := newSSEReader(strings.NewReader(stream))
		var rs resumer
		for range len(stream) + 1 {
			fr, err := r.next()
			if err != nil {
				return
			}
			require.LessOrEqual(t, len(fr.data), len(stream))
			// Whatever a frame holds, the policy takes it and the
			// decoders answer with an event or an error.
			rs.frame(fr)
			if ev, err := decodeEvent(fr); err == nil && ev.Kind != EventSynced {
				require.NotEmpty(t, ev.Member.ID)
			}
			_, _ = decodeNodeEvent(fr)
		}
		t.Fatal("more frames than bytes")
	})
}
