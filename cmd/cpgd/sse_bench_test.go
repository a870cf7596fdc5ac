package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// throughServer hides the connection from a stream, so that it writes
// through the server's buffers as every stream did before streams took
// their connections over.
type throughServer struct{ http.ResponseWriter }

func (t throughServer) Flush() { http.NewResponseController(t.ResponseWriter).Flush() }

func (t throughServer) SetWriteDeadline(d time.Time) error {
	return http.NewResponseController(t.ResponseWriter).SetWriteDeadline(d)
}

func (t throughServer) SetReadDeadline(d time.Time) error {
	return http.NewResponseController(t.ResponseWriter).SetReadDeadline(d)
}

// BenchmarkStreamFlush measures one flush of a watch stream carrying a
// batch of events (the size a stream of a busy group gathers in a write
// interval), to a client on loopback that reads as fast as it can:
// written by the stream on the connection it owns (one writev of the
// shared events) or through the server's buffers (a copy into them and a
// write every few kilobytes).
//
//	go test ./cmd/cpgd -run '^$' -bench StreamFlush -benchmem
func BenchmarkStreamFlush(b *testing.B) {
	event := appendEvent(nil, "5b0e2a91c3f4-123456", "join",
		[]byte(`{"scope":"default","group":"/busy","member":{"id":"member-000123","node":"agent-1","count":1,"joined":"2026-11-25T16:43:00.123456789Z"},"applied":"2026-11-25T16:43:00.123456789Z"}`))
	for _, batch := range []int{1, 50, 500} {
		for _, owned := range []bool{true, false} {
			name := fmt.Sprintf("events=%d/through-server", batch)
			if owned {
				name = fmt.Sprintf("events=%d/owned-connection", batch)
			}
			b.Run(name, func(b *testing.B) {
				flushes := make(chan int)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !owned {
						w = throughServer{w}
					}
					s := openStream(w, r, time.Minute, nil)
					defer s.end()
					require.Equal(b, owned, s.conn != nil)
					for n := range flushes {
						s.deadline()
						for range n {
							s.raw(event)
						}
						if s.flush() != nil {
							return
						}
					}
				}))
				defer srv.Close()
				conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
				require.NoError(b, err)
				defer conn.Close()
				_, err = fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				require.NoError(b, err)
				read := make(chan int64)
				go func() {
					n, _ := io.Copy(io.Discard, bufio.NewReaderSize(conn, 32<<10))
					read <- n
				}()
				b.SetBytes(int64(batch * len(event)))
				b.ResetTimer()
				for range b.N {
					flushes <- batch
				}
				b.StopTimer()
				close(flushes)
				require.Greater(b, <-read, int64(b.N*batch*len(event)))
			})
		}
	}
}
