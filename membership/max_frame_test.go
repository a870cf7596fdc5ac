package membership

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpggo/cpg/internal/wire"
)

// logRecorder keeps a node's log lines, for tests about what is logged.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *logRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *logRecorder) lines(level string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range strings.Split(r.buf.String(), "\n") {
		if strings.Contains(l, "level="+level) {
			out = append(out, l)
		}
	}
	return out
}

func (r *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestSendRefusesPayloadOverPeersMaxFrame: b reads frames of at most
// 64 KiB, a up to the default. a's Send must refuse a larger payload for b
// (the handshake told it b's limit) instead of sending it and having b cut
// the link, and the link must keep carrying what fits.
func TestSendRefusesPayloadOverPeersMaxFrame(t *testing.T) {
	a := startNode(t, testNodeConfig("a"))
	small := testNodeConfig("b")
	small.MaxFrame = 64 << 10
	b := startNode(t, small)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Join(ctx, a.GossipAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a-b link not established", func() bool {
		_, ok := a.RTT("b")
		return ok && containsPeer(a.Active(), "b")
	})

	err := a.Send("b", make([]byte, 100<<10))
	var tooLarge *wire.FrameTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Max != small.MaxFrame {
		t.Fatalf("send of 100 KiB to a peer reading 64 KiB: %v, want a FrameTooLargeError naming its %d-byte limit", err, small.MaxFrame)
	}
	if err := a.Send("b", []byte("fits")); err != nil {
		t.Fatalf("send after the refusal: %v", err)
	}
	for {
		ev := nextEvent(t, b, Message, 5*time.Second)
		if string(ev.Payload) == "fits" {
			break
		}
		t.Fatalf("b received %d bytes, want the payload that fits", len(ev.Payload))
	}
	if !containsPeer(a.Active(), "b") || !containsPeer(b.Active(), "a") {
		t.Fatal("the link went down")
	}
}

// TestOversizedFrameIsLoggedAtWarn: a peer that sends a frame over this
// node's MaxFrame anyway (it ignored the handshake) loses the link, and the
// operator sees why, with both sizes, at Warn.
func TestOversizedFrameIsLoggedAtWarn(t *testing.T) {
	var logs logRecorder
	cfg := testNodeConfig("a")
	cfg.MaxFrame = 64 << 10
	cfg.Logger = logs.logger()
	n := startNode(t, cfg)
	conn, _ := dialAsGhost(t, n)
	nextEvent(t, n, LinkUp, 5*time.Second)
	const size = 100 << 10
	if err := wire.WriteFrame(conn, framePayload, make([]byte, size-1), wire.DefaultMaxFrame); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, n, LinkDown, 5*time.Second)
	warns := logs.lines("WARN")
	for _, l := range warns {
		if strings.Contains(l, "size=102400") && strings.Contains(l, "maxFrame=65536") {
			t.Logf("logged: %s", l)
			return
		}
	}
	t.Fatalf("no warning naming both sizes; warnings: %q", warns)
}
