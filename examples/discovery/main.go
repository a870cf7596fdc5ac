// Discovery: service discovery through a cpgd agent with the Go client.
// Workers serve HTTP and register in a group with a lease that the client
// keeps alive; a caller picks a worker from the registry and calls it.
// Then one worker crashes: its server goes and nothing keeps its lease
// alive any more. Until the lease lapses the caller may still pick it, fails
// to reach it and picks another; once the lease lapses the agent drops the
// worker and the caller never sees it again. Run it with
//
//	go run ./examples/discovery                                  # starts an agent of its own
//	go run ./examples/discovery --addr http://127.0.0.1:7401    # or uses a running one
//
// Without --addr it builds cpgd (go build) unless --cpgd names a binary,
// runs it on a free loopback port with a temporary data directory, and
// stops it at the end.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cpggo/cpg/client"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "", "API of a running cpgd agent (default: start one)")
	flag.StringVar(&cfg.cpgd, "cpgd", "", "the cpgd binary to start when --addr is not given (default: go build it)")
	flag.StringVar(&cfg.token, "token", os.Getenv("CPGD_TOKEN"), "the agent's bearer token, if it wants one [CPGD_TOKEN]")
	flag.IntVar(&cfg.workers, "workers", 3, "how many workers")
	flag.DurationVar(&cfg.ttl, "ttl", 2*time.Second, "the workers' lease TTL: how long a crashed worker stays registered at most")
	flag.IntVar(&cfg.calls, "calls", 6, "calls before the crash, and again once the registry dropped the crashed worker")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// config is the run to make.
type config struct {
	addr, cpgd, token string
	workers, calls    int
	ttl               time.Duration
}

const (
	scope = "default"
	group = "/svc/greeter"
)

func run(ctx context.Context, cfg config, out io.Writer) error {
	if cfg.workers < 2 {
		return errors.New("discovery: want at least 2 workers, one to crash and one to carry on")
	}
	api := cfg.addr
	if api == "" {
		agent, err := startAgent(ctx, cfg.cpgd, out)
		if err != nil {
			return err
		}
		defer agent.stop(out)
		api = agent.api
	}
	var opts []client.Option
	if cfg.token != "" {
		opts = append(opts, client.WithToken(cfg.token))
	}
	c, err := client.New(api, opts...)
	if err != nil {
		return err
	}

	// The caller watches the group to see when the registry drops the
	// crashed worker.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events, err := c.Watch(watchCtx, scope, group, client.WatchOptions{})
	if err != nil {
		return fmt.Errorf("watch %s: %w", group, err)
	}
	gone := make(chan string, cfg.workers)
	go func() {
		for ev := range events {
			if ev.Kind == client.EventLeave && ev.Member.Count == 0 {
				gone <- ev.Member.ID
			}
		}
	}()

	workers := make([]*worker, 0, cfg.workers)
	defer func() {
		for _, w := range workers {
			w.stop(out)
		}
	}()
	for i := range cfg.workers {
		w, err := startWorker(ctx, c, fmt.Sprintf("worker-%d", i+1), cfg.ttl)
		if err != nil {
			return err
		}
		workers = append(workers, w)
		fmt.Fprintf(out, "%s serves http://%s, registered in %s with lease %s (ttl %v)\n", w.name, w.addr, group, w.lease.ID, cfg.ttl)
	}

	caller := &caller{c: c, out: out, answered: map[string]int{}}
	for range cfg.calls {
		if err := caller.call(ctx); err != nil {
			return err
		}
	}

	crashed := workers[1]
	crashed.crash()
	crashedAt := time.Now()
	fmt.Fprintf(out, "%s crashed: its server is gone and nothing keeps its lease alive\n", crashed.name)
	for dropped := false; !dropped; {
		select {
		case id := <-gone:
			if id == crashed.name {
				fmt.Fprintf(out, "the registry dropped %s %v after the crash, its lease lapsed\n", id, time.Since(crashedAt).Round(100*time.Millisecond))
				dropped = true
			}
		case <-ctx.Done():
			return fmt.Errorf("%s never left the registry: %w", crashed.name, ctx.Err())
		case <-time.After(cfg.ttl / 8):
			if err := caller.call(ctx); err != nil {
				return err
			}
		}
	}
	before := caller.answered[crashed.name]
	for range cfg.calls {
		if err := caller.call(ctx); err != nil {
			return err
		}
	}
	if caller.answered[crashed.name] != before {
		return fmt.Errorf("%s answered after it crashed", crashed.name)
	}
	fmt.Fprintf(out, "%d calls answered, %d attempts failed on %s before the registry dropped it\n",
		caller.calls, caller.failed, crashed.name)
	return nil
}

// caller picks a worker from the registry for each call.
type caller struct {
	c   *client.Client
	out io.Writer
	// calls counts answered calls; failed, attempts that found no one;
	// answered, the calls each worker answered.
	calls, failed int
	answered      map[string]int
}

// call picks a worker at random and calls it; a worker that does not
// answer is skipped and another picked, until one answers.
func (cl *caller) call(ctx context.Context) error {
	var skip []string
	for {
		_, m, err := cl.c.Pick(ctx, scope, group, client.Random, skip...)
		if err != nil {
			return fmt.Errorf("pick a worker: %w", err)
		}
		reply, err := get(ctx, "http://"+m.Meta["addr"]+"/hello")
		if err != nil {
			cl.failed++
			fmt.Fprintf(cl.out, "  %s did not answer (%v): picking another\n", m.ID, shortError(err))
			skip = append(skip, m.ID)
			continue
		}
		cl.calls++
		cl.answered[m.ID]++
		fmt.Fprintf(cl.out, "call %d: %s\n", cl.calls, reply)
		return nil
	}
}

func get(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// shortError drops the request's details from a refused connection.
func shortError(err error) string {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "connection refused"
	}
	return err.Error()
}

// worker is one service instance: an HTTP server registered under a lease.
type worker struct {
	name, addr string
	srv        *http.Server
	lease      *client.Lease
	c          *client.Client
	crashed    bool
}

func startWorker(ctx context.Context, c *client.Client, name string, ttl time.Duration) (*worker, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &worker{name: name, addr: ln.Addr().String(), c: c}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(rw, "hello from %s\n", name)
	})
	w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go w.srv.Serve(ln)

	// The lease is kept alive in the background; a join bound to it
	// leaves when it lapses, as when this process dies.
	if w.lease, err = c.Grant(ctx, ttl); err != nil {
		w.srv.Close()
		return nil, fmt.Errorf("%s: grant a lease: %w", name, err)
	}
	_, err = c.Join(ctx, scope, group, name, client.JoinOptions{
		Meta: map[string]string{"addr": w.addr}, Lease: w.lease.ID,
	})
	if err != nil {
		w.lease.Close()
		w.srv.Close()
		return nil, fmt.Errorf("%s: join %s: %w", name, group, err)
	}
	return w, nil
}

// crash stops the worker as a crash would: the server is gone at once,
// and the lease is not revoked, only no longer kept alive.
func (w *worker) crash() {
	w.crashed = true
	w.srv.Close()
	w.lease.Close()
}

// stop stops the worker gracefully: revoking the lease takes its
// registration back at once, so no caller picks it after.
func (w *worker) stop(out io.Writer) {
	if w.crashed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.lease.Revoke(ctx); err != nil {
		fmt.Fprintf(out, "%s: revoke its lease: %v\n", w.name, err)
	}
	w.srv.Shutdown(ctx)
	fmt.Fprintf(out, "%s stopped: lease revoked, gone from the registry at once\n", w.name)
}

// agent is a cpgd agent this example started.
type agent struct {
	api    string
	cmd    *exec.Cmd
	exited chan struct{}
	tmp    string
}

// startAgent runs cpgd on a free loopback port (building it first when
// bin is empty) and returns once its API listens.
func startAgent(ctx context.Context, bin string, out io.Writer) (*agent, error) {
	a := &agent{exited: make(chan struct{})}
	var err error
	if a.tmp, err = os.MkdirTemp("", "discovery-cpgd-"); err != nil {
		return nil, err
	}
	if bin == "" {
		bin = filepath.Join(a.tmp, "cpgd")
		fmt.Fprintln(out, "building cpgd")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/cpggo/cpg/cmd/cpgd")
		if msg, err := build.CombinedOutput(); err != nil {
			os.RemoveAll(a.tmp)
			return nil, fmt.Errorf("build cpgd: %w\n%s", err, msg)
		}
	}
	// Its durable state goes in the temporary directory too, not in the
	// user's state directory where an agent keeps it by default.
	a.cmd = exec.Command(bin, "agent", "--name", "agent-1", "--http", "127.0.0.1:0",
		"--data-dir", filepath.Join(a.tmp, "data"))
	// The agent must not outlive this program, even if it is killed.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(a.tmp)
		return nil, err
	}
	if err := a.cmd.Start(); err != nil {
		os.RemoveAll(a.tmp)
		return nil, fmt.Errorf("start cpgd: %w", err)
	}
	listening := make(chan string, 1)
	go func() {
		// Read the log to its end, so the agent never blocks on it; the
		// start line says where the API listens.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, `msg="cpgd agent started"`) {
				continue
			}
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "http="); ok {
					listening <- v
				}
			}
		}
		a.cmd.Wait()
		close(a.exited)
	}()
	select {
	case a.api = <-listening:
		fmt.Fprintln(out, "cpgd agent-1 listens on", a.api)
		return a, nil
	case <-a.exited:
		os.RemoveAll(a.tmp)
		return nil, fmt.Errorf("cpgd exited at start: %v", a.cmd.ProcessState)
	case <-ctx.Done():
		a.cmd.Process.Kill()
		<-a.exited
		os.RemoveAll(a.tmp)
		return nil, ctx.Err()
	}
}

// stop asks the agent to leave (SIGTERM) and waits for it.
func (a *agent) stop(out io.Writer) {
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		a.cmd.Process.Kill()
		<-a.exited
	}
	os.RemoveAll(a.tmp)
	fmt.Fprintln(out, "cpgd agent-1 stopped")
}
