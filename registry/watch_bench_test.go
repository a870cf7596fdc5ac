package registry

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkJoinWatched measures what watchers cost joins (W1's joins, as
// BenchmarkJoin): none, 1,000 idle ones (watching a group of the same
// scope that never changes) and 1,000 busy ones (watching every group the
// joins touch), each reading its events as they come and encoding them as
// JSON, as cpgd's streams do. "watch" reads through Scope.Watch's channel;
// "subscription" through Subscribe, as cpgd does. A watcher that
// overflows watches again; overflows/op says how often.
//
//	go test ./registry -run '^$' -bench JoinWatched -benchtime 200000x
func BenchmarkJoinWatched(b *testing.B) {
	for _, c := range []struct {
		name     string
		watchers int
		filter   string
	}{
		{"none", 0, ""},
		{"idle-1000", 1000, "/idle"},
		{"busy-1000", 1000, "/svc/*"},
	} {
		for _, via := range []string{"watch", "subscription"} {
			if c.watchers == 0 && via == "subscription" {
				continue
			}
			b.Run(c.name+"/"+via, func(b *testing.B) {
				w := newW1()
				s := benchNode(b)
				var overflows, events atomic.Int64
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var started sync.WaitGroup
				for range c.watchers {
					started.Add(1)
					if via == "watch" {
						wg.Go(func() { readWatch(b, s, c.filter, stop, &started, &events, &overflows) })
					} else {
						wg.Go(func() { readSubscription(b, s, c.filter, stop, &started, &events, &overflows) })
					}
				}
				started.Wait()
				joinLoop(b, s, w)
				b.StopTimer()
				close(stop)
				s.n.Close()
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "joins/s")
				b.ReportMetric(float64(overflows.Load())/float64(b.N), "overflows/op")
				b.ReportMetric(float64(events.Load())/float64(b.N), "delivered/op")
			})
		}
	}
}

func encodeEvent(r *Record) []byte {
	data, _ := json.Marshal(r.Event)
	return []byte(fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", r.Seq, r.Kind, data))
}

func readWatch(b *testing.B, s *Scope, filter string, stop chan struct{}, started *sync.WaitGroup, events, overflows *atomic.Int64) {
	first := true
	for {
		w, err := s.Watch(filter, 0)
		if first {
			started.Done()
			first = false
		}
		if err != nil {
			return
		}
		for ev := range w.Events() {
			if ev.Kind == EventOverflow {
				overflows.Add(1)
				continue
			}
			data, _ := json.Marshal(ev)
			_ = data
			events.Add(1)
		}
		if w.Err() == nil || w.Err() == ErrClosed {
			return
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}

func readSubscription(b *testing.B, s *Scope, filter string, stop chan struct{}, started *sync.WaitGroup, events, overflows *atomic.Int64) {
	first := true
	var batch []*Record
	for {
		sub, err := s.Subscribe(filter, SubscribeOptions{})
		if first {
			started.Done()
			first = false
		}
		if err != nil {
			return
		}
		for {
			select {
			case <-sub.Ready():
			case <-stop:
				sub.Close()
				return
			}
			batch, err = sub.Next(batch[:0])
			for _, r := range batch {
				_ = r.Encoded(encodeEvent)
			}
			events.Add(int64(len(batch)))
			clear(batch)
			if err != nil {
				break
			}
		}
		if err == ErrClosed {
			return
		}
		overflows.Add(1)
	}
}
