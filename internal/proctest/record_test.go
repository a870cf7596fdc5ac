package proctest

import (
	"io"
	"testing"
	"testing/iotest"
)

// A stream read in pieces that cut lines anywhere: every join is counted
// once, the recording stops at the joins it waited for, and each event is
// stamped with the read that completed it.
func TestRecordingCountsJoinsAcrossReads(t *testing.T) {
	stream := ": heartbeat\n\n" +
		"id: 1\nevent: join\ndata: {\"group\":\"/g\",\"member\":{\"id\":\"m0\",\"node\":\"a\"},\"applied\":\"2026-11-25T21:00:00.000001Z\"}\n\n" +
		"id: 2\nevent: leave\ndata: {\"group\":\"/g\",\"member\":{\"id\":\"m0\",\"node\":\"a\"},\"applied\":\"2026-11-25T21:00:00.000002Z\"}\n\n" +
		"id: 3\nevent: join\ndata: {\"group\":\"/g\",\"member\":{\"id\":\"m1\",\"node\":\"a\"},\"applied\":\"2026-11-25T21:00:00.000003Z\"}\n\n" +
		"id: 4\nevent: join\ndata: {\"group\":\"/g\",\"member\":{\"id\":\"m2\",\"node\":\"a\"},\"applied\":\"2026-11-25T21:00:00.000004Z\"}\n\n"
	for _, joins := range []int{1, 2, 3} {
		var r Recording
		r.read(iotest.OneByteReader(stringReader(stream)), joins)
		p := r.Parse()
		if p.Err != nil || p.Overflow {
			t.Fatalf("joins %d: err %v, overflow %v", joins, p.Err, p.Overflow)
		}
		var got []string
		for _, ev := range p.Events {
			if ev.Kind == "join" {
				got = append(got, ev.Member.ID)
			}
			if ev.At.IsZero() || ev.Applied.IsZero() {
				t.Fatalf("joins %d: event %+v is not stamped", joins, ev)
			}
		}
		if len(got) != joins || got[joins-1] != []string{"m0", "m1", "m2"}[joins-1] {
			t.Fatalf("joins %d: recorded joins %v", joins, got)
		}
	}
}

// A stream the node cut off for falling behind ends the recording there.
func TestRecordingStopsAtOverflow(t *testing.T) {
	stream := "id: 1\nevent: join\ndata: {\"group\":\"/g\",\"member\":{\"id\":\"m0\",\"node\":\"a\"},\"applied\":\"2026-11-25T21:00:00Z\"}\n\n" +
		"event: overflow\ndata: {\"error\":\"behind\"}\n\n"
	var r Recording
	r.read(stringReader(stream), 5)
	if p := r.Parse(); !p.Overflow || len(p.Events) != 2 {
		t.Fatalf("overflow %v, %d events", p.Overflow, len(p.Events))
	}
}

func stringReader(s string) io.Reader { return &stringSource{s: s} }

type stringSource struct{ s string }

func (r *stringSource) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p, r.s)
	r.s = r.s[n:]
	return n, nil
}
