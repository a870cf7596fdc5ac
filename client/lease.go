package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// LeaseInfo is a lease as the agent shows it.
type LeaseInfo struct {
	ID string `json:"id"`
	// TTL is how long the lease lives without a keepalive.
	TTL time.Duration `json:"-"`
	// Expires is when it lapses unless kept alive, by the agent's clock.
	Expires time.Time `json:"expires"`
	// Members are the members joined under the lease (filled by
	// ShowLease only).
	Members []LeasedMember `json:"members,omitempty"`
}

// LeasedMember is a member joined under a lease.
type LeasedMember struct {
	Scope  string `json:"scope"`
	Group  string `json:"group"`
	Member string `json:"member"`
	// Count is how many of its joins were made under the lease.
	Count int `json:"count"`
}

// MarshalJSON writes the lease as the agent does, ttl as a duration
// string.
func (l LeaseInfo) MarshalJSON() ([]byte, error) {
	type plain LeaseInfo
	return json.Marshal(struct {
		plain
		TTL string `json:"ttl"`
	}{plain(l), l.TTL.String()})
}

// UnmarshalJSON reads the agent's lease: ttl is a Go duration string
// ("10s"); a number is taken as seconds.
func (l *LeaseInfo) UnmarshalJSON(data []byte) error {
	var raw struct {
		ID      string          `json:"id"`
		TTL     json.RawMessage `json:"ttl"`
		Expires time.Time       `json:"expires"`
		Members []LeasedMember  `json:"members"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	l.ID, l.Expires, l.Members, l.TTL = raw.ID, raw.Expires, raw.Members, 0
	if len(raw.TTL) == 0 || string(raw.TTL) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw.TTL, &s) == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("lease ttl: %w", err)
		}
		l.TTL = d
		return nil
	}
	secs, err := strconv.ParseFloat(string(raw.TTL), 64)
	if err != nil {
		return fmt.Errorf("lease ttl %s: want a duration", raw.TTL)
	}
	l.TTL = time.Duration(secs * float64(time.Second))
	return nil
}

func leasePath(id, call string) string {
	p := "/v1/leases/" + url.PathEscape(id)
	if call != "" {
		p += "/" + call
	}
	return p
}

// CreateLease creates a lease of the given TTL and leaves keeping it alive
// to the caller (KeepAliveLease); Grant keeps it alive for you.
func (c *Client) CreateLease(ctx context.Context, ttl time.Duration) (LeaseInfo, error) {
	if ttl <= 0 {
		return LeaseInfo{}, fmt.Errorf("cpgd client: lease ttl %v: want more than 0", ttl)
	}
	var out LeaseInfo
	err := c.do(ctx, "POST", "/v1/leases", nil, map[string]string{"ttl": ttl.String()}, &out)
	if err == nil && out.TTL == 0 {
		out.TTL = ttl
	}
	return out, err
}

// KeepAliveLease renews lease id for another TTL; ErrNotFound when it
// lapsed or was revoked (its members are gone).
func (c *Client) KeepAliveLease(ctx context.Context, id string) (LeaseInfo, error) {
	var out LeaseInfo
	err := c.do(ctx, "POST", leasePath(id, "keepalive"), nil, struct{}{}, &out)
	if err == nil && out.ID == "" {
		out.ID = id
	}
	return out, err
}

// ShowLease returns lease id with the members joined under it;
// ErrNotFound when it lapsed or was revoked.
func (c *Client) ShowLease(ctx context.Context, id string) (LeaseInfo, error) {
	var out LeaseInfo
	err := c.do(ctx, "GET", leasePath(id, ""), nil, nil, &out)
	return out, err
}

// RevokeLease ends lease id now: every member joined with it leaves.
func (c *Client) RevokeLease(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", leasePath(id, ""), nil, nil, nil)
}

// ErrLeaseLost is why a Lease ended when the agent no longer knows it or
// no keepalive got through before it expired: its members have left.
var ErrLeaseLost = errors.New("cpgd: lease lost")

// ErrLeaseClosed is why a Lease ended when Close or Revoke ended it.
var ErrLeaseClosed = errors.New("cpgd: lease closed")

// Lease is a lease the client keeps alive in the background, a keepalive
// every TTL/3, until Close or Revoke. If the agent forgets it, or no
// keepalive succeeds before it expires, it is lost: Done closes and Err
// says why, and the members joined with it are gone.
type Lease struct {
	// ID is what a join takes as JoinOptions.Lease.
	ID string
	// TTL is how long the lease lives without a keepalive.
	TTL time.Duration

	c      *Client
	ctx    context.Context // ends when the lease is closed
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	expires time.Time // by this process's clock: send time of the last renewal + TTL
	err     error
}

// Grant creates a lease of the given TTL and keeps it alive in the
// background until Close or Revoke. ctx bounds the creation only: the
// keepalives outlive it.
func (c *Client) Grant(ctx context.Context, ttl time.Duration) (*Lease, error) {
	sent := time.Now()
	info, err := c.CreateLease(ctx, ttl)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	l := &Lease{ID: info.ID, TTL: info.TTL, c: c, ctx: bg, cancel: cancel,
		done: make(chan struct{}), expires: sent.Add(info.TTL)}
	go l.keepAlive()
	return l, nil
}

// Done is closed when the lease is no longer kept alive: lost, closed or
// revoked.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err is nil while the lease is kept alive; after Done it wraps
// ErrLeaseLost (with the last failure) or is ErrLeaseClosed.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Expires is when the lease lapses unless renewed, by this process's
// clock (conservatively: counted from when the last renewal was sent).
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Close stops keeping the lease alive, without revoking it: it lapses
// after its TTL. It waits for an ongoing keepalive to end.
func (l *Lease) Close() {
	l.end(ErrLeaseClosed)
	l.cancel()
	<-l.done
}

// Revoke stops keeping the lease alive and revokes it: its members leave
// now. After the lease was lost, the agent no longer knows it: Revoke
// returns an error matching ErrNotFound.
func (l *Lease) Revoke(ctx context.Context) error {
	l.Close()
	return l.c.RevokeLease(ctx, l.ID)
}

// end records why the lease ended, unless it already ended.
func (l *Lease) end(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

func (l *Lease) keepAlive() {
	defer close(l.done)
	defer l.cancel()
	timer := time.NewTimer(keepAliveDelay(l.TTL, 0))
	defer timer.Stop()
	failures := 0
	var lastFailure error // the last failure that was not the expiry itself
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-timer.C:
		}
		sent := time.Now()
		// A renewal that answers after the lease expired is no use: the
		// agent has already let its members go.
		ctx, cancel := context.WithDeadline(l.ctx, l.Expires())
		_, err := l.c.KeepAliveLease(ctx, l.ID)
		cancel()
		switch {
		case err == nil:
			failures, lastFailure = 0, nil
			l.mu.Lock()
			l.expires = sent.Add(l.TTL)
			l.mu.Unlock()
		case l.ctx.Err() != nil:
			return
		case keepAliveHopeless(err):
			l.end(fmt.Errorf("%w: %s: %w", ErrLeaseLost, l.ID, err))
			return
		case !time.Now().Before(l.Expires()):
			if lastFailure == nil || !errors.Is(err, context.DeadlineExceeded) {
				lastFailure = err
			}
			l.end(fmt.Errorf("%w: %s: no keepalive got through before it expired: %w", ErrLeaseLost, l.ID, lastFailure))
			return
		default:
			failures++
			lastFailure = err
		}
		timer.Reset(keepAliveDelay(l.TTL, failures))
	}
}

// keepAliveDelay is the wait before the next keepalive of a lease: a third
// of its TTL after a success, so two can fail before it lapses; a tenth
// after a failure, so a short outage costs little of what is left.
func keepAliveDelay(ttl time.Duration, failures int) time.Duration {
	d := ttl / 3
	if failures > 0 {
		d = ttl / 10
	}
	return max(d, time.Millisecond)
}

// keepAliveHopeless reports whether a keepalive's failure means the lease
// cannot be renewed: the agent answered that it does not know it, or
// refused the request itself. A transport error or a 5xx may pass.
func keepAliveHopeless(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status >= 400 && e.Status < 500 &&
		e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}
