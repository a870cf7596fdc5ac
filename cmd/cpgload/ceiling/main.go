// Command ceiling serves cpgd's lookup answer with no registry behind it,
// on three Go HTTP stacks, so that run.sh can measure how many lookups a
// second an HTTP server of each shape can answer on this machine at all,
// beside cpgd and nginx, under one generator (wrk).
//
// It is its own module so that cpgd does not depend on the stacks it is
// compared with. Usage:
//
//	ceiling preload <cpgd address>                 # 1,000 groups of 10 members, as cpgload's
//	ceiling nethttp|fasthttp|gnet <address> <body file>
package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/fasthttp"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: ceiling preload <addr> | ceiling nethttp|fasthttp|gnet <addr> <body file>")
		os.Exit(2)
	}
	mode, addr := os.Args[1], os.Args[2]
	if mode == "preload" {
		if err := preload(addr); err != nil {
			fmt.Fprintln(os.Stderr, "preload:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: ceiling nethttp|fasthttp|gnet <addr> <body file>")
		os.Exit(2)
	}
	body, err := os.ReadFile(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	switch mode {
	case "nethttp":
		err = http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}))
	case "fasthttp":
		err = fasthttp.ListenAndServe(addr, func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.Write(body)
		})
	case "gnet":
		answer := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		err = gnet.Run(&eventLoop{answer: answer}, "tcp://"+addr)
	default:
		err = fmt.Errorf("unknown server %q", mode)
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// eventLoop answers every request it finds whole in a connection's input
// with the same bytes: the least an HTTP server can do per request, on one
// epoll loop instead of a goroutine per connection.
type eventLoop struct {
	gnet.BuiltinEventEngine
	answer []byte
}

var endOfHeaders = []byte("\r\n\r\n")

func (l *eventLoop) OnTraffic(c gnet.Conn) gnet.Action {
	in, _ := c.Peek(-1)
	used := 0
	for {
		i := bytes.Index(in[used:], endOfHeaders)
		if i < 0 {
			break
		}
		used += i + len(endOfHeaders)
		c.Write(l.answer)
	}
	c.Discard(used)
	return gnet.None
}

// preload joins what cpgload's lookup workload finds: groups /svc/<g>/x,
// g < 1,000, of 10 members each.
func preload(addr string) error {
	const groups, members, clients = 1000, 10, 16
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < groups*members; i += clients {
				body := fmt.Sprintf(`{"group":"/svc/%d/x","member":"m%d"}`, i%groups, i)
				resp, err := http.Post("http://"+addr+"/v1/scopes/default/join", "application/json", bytes.NewBufferString(body))
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("join %s: %s", body, resp.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
