package main

import (
	"fmt"
	"sync"
)

// watches are open watch streams, each read by a goroutine of its own.
type watches struct {
	conns   []*conn
	readers []*countingReader
	ended   []chan struct{}
	wg      sync.WaitGroup
}

func openWatches(o *options, addr string, n int, target func(i int) string) (*watches, error) {
	ws := &watches{}
	for i := range n {
		cr := &countingReader{}
		c, status, err := stream(addr, target(i), o.token, cr)
		if err != nil {
			ws.close()
			return nil, err
		}
		if status != 200 {
			c.close()
			ws.close()
			return nil, fmt.Errorf("watch %d of %d refused: status %d (raise the agent's watch limits with -agent-args)", i+1, n, status)
		}
		done := make(chan struct{})
		ws.conns, ws.readers, ws.ended = append(ws.conns, c), append(ws.readers, cr), append(ws.ended, done)
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			defer close(done)
			cr.drain()
		}()
	}
	return ws, nil
}

// summary says how many events the streams read and how many streams the
// agent ended (a watcher that fell behind is cut off).
func (ws *watches) summary() string {
	var events int64
	cut := 0
	for i, r := range ws.readers {
		events += r.events.Load()
		select {
		case <-ws.ended[i]:
			cut++
		default:
		}
	}
	return fmt.Sprintf("%d watches read %d events, %d streams ended by the agent", len(ws.readers), events, cut)
}

func (ws *watches) close() {
	if ws == nil {
		return
	}
	closeAll(ws.conns)
	ws.wg.Wait()
}
