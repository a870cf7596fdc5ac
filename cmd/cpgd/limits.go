package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// apiLimits are the agent's flags that bound what clients of the API may
// cost it, and whom it answers.
type apiLimits struct {
	maxBody      int64
	maxScopes    int
	allowedHosts []string
	timeouts     serverTimeouts
	// drain is how long shutdown lets requests in flight finish before it
	// closes their connections.
	drain time.Duration
	// envErr is the first environment variable that did not parse.
	envErr error
}

// serverTimeouts are the HTTP server's. Streams (watches) extend their
// own write deadline before each write and lift their read deadline.
type serverTimeouts struct {
	readHeader, read, write, idle time.Duration
}

func (l *apiLimits) flags(fs *flag.FlagSet) {
	fs.Int64Var(&l.maxBody, "max-body", l.envInt("CPGD_MAX_BODY", defaultMaxBody), "largest request body in bytes; a larger one is answered 413 [CPGD_MAX_BODY]")
	fs.IntVar(&l.maxScopes, "max-scopes", int(l.envInt("CPGD_MAX_SCOPES", 10000)), "most scopes a join may create; past it a join into a new scope is answered 413 (0: no bound) [CPGD_MAX_SCOPES]")
	fs.Func("allowed-hosts", "comma-separated host names (host or host:port) the API answers to besides IP addresses and localhost, e.g. the name a proxy forwards [CPGD_ALLOWED_HOSTS]", l.setAllowedHosts)
	if v, ok := os.LookupEnv("CPGD_ALLOWED_HOSTS"); ok {
		_ = l.setAllowedHosts(v)
	}
	fs.DurationVar(&l.timeouts.readHeader, "read-header-timeout", l.envDuration("CPGD_READ_HEADER_TIMEOUT", 5*time.Second), "time a client has to send a request's headers [CPGD_READ_HEADER_TIMEOUT]")
	fs.DurationVar(&l.timeouts.read, "read-timeout", l.envDuration("CPGD_READ_TIMEOUT", 30*time.Second), "time a client has to send a whole request [CPGD_READ_TIMEOUT]")
	fs.DurationVar(&l.timeouts.write, "write-timeout", l.envDuration("CPGD_WRITE_TIMEOUT", 30*time.Second), "time to write a response; a stream's every write gets its own [CPGD_WRITE_TIMEOUT]")
	fs.DurationVar(&l.timeouts.idle, "idle-timeout", l.envDuration("CPGD_IDLE_TIMEOUT", 2*time.Minute), "time a kept-alive connection may wait for its next request [CPGD_IDLE_TIMEOUT]")
	fs.DurationVar(&l.drain, "shutdown-drain", l.envDuration("CPGD_SHUTDOWN_DRAIN", time.Second), "at SIGTERM, time requests in flight have to finish before their connections are closed [CPGD_SHUTDOWN_DRAIN]")
}

func (l *apiLimits) setAllowedHosts(v string) error {
	l.allowedHosts = nil
	for h := range strings.SplitSeq(v, ",") {
		if h = strings.TrimSpace(h); h != "" {
			l.allowedHosts = append(l.allowedHosts, h)
		}
	}
	return nil
}

func (l *apiLimits) check() error {
	if l.envErr != nil {
		return l.envErr
	}
	if l.maxBody < 1 {
		return fmt.Errorf("%w: --max-body %d: want at least 1", errUsage, l.maxBody)
	}
	if l.maxScopes < 0 {
		return fmt.Errorf("%w: --max-scopes %d: want 0 (no bound) or more", errUsage, l.maxScopes)
	}
	for _, d := range []time.Duration{l.timeouts.readHeader, l.timeouts.read, l.timeouts.write, l.timeouts.idle, l.drain} {
		if d <= 0 {
			return fmt.Errorf("%w: timeouts must be positive, not %v", errUsage, d)
		}
	}
	return nil
}

// envInt and envDuration read a flag's default from the environment; a
// value that does not parse stops the agent at start.
func (l *apiLimits) envInt(key string, def int64) int64 {
	v, ok := os.LookupEnv(key)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil && l.envErr == nil {
		l.envErr = fmt.Errorf("%w: %s=%q: not an integer", errUsage, key, v)
	}
	return n
}

func (l *apiLimits) envDuration(key string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil && l.envErr == nil {
		l.envErr = fmt.Errorf("%w: %s=%q: not a duration such as 5s", errUsage, key, v)
	}
	return d
}
