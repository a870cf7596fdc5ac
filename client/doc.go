// Package client is a Go client of a cpgd agent's HTTP API (docs/API.md):
// joins, leaves and metadata, member listings and picks, watches, leases
// and the cluster's nodes and overlay. Every call takes a context; an
// answer other than 200 is an *Error that errors.Is matches against
// ErrNotFound, ErrUnauthorized and the other sentinels.
//
// # Registering a service with a lease
//
// A service that registers through cpgd, rather than running a node of
// its own, binds its registrations to a lease so that they go away when
// the service does, even if it crashes or loses the network:
//
//	c, err := client.New("http://127.0.0.1:7400", client.WithToken(token))
//	lease, err := c.Grant(ctx, 10*time.Second)
//	defer lease.Revoke(context.Background())
//	_, err = c.Join(ctx, "default", "/svc/db", "db-1",
//		client.JoinOptions{Meta: map[string]string{"addr": addr}, Lease: lease.ID})
//
// Grant keeps the lease alive in the background, a keepalive every third
// of its TTL, so two in a row can fail before it lapses. The agent removes
// every member joined with the lease when no keepalive arrives for a whole
// TTL, or at once on Revoke; Close stops the keepalives and lets the lease
// lapse. If the lease is lost anyway (the agent forgot it, or no keepalive
// got through in time), Done closes and Err wraps ErrLeaseLost: the
// registrations are gone, and the service grants a new lease and joins
// again. The TTL trades how fast a dead service disappears against how
// long a network hiccup it survives.
//
// # Watching
//
// Watch delivers a scope's changes on a channel until its context ends. It
// reconnects by itself and resumes after the last event it saw; when the
// agent cannot resume (it restarted, or the watcher fell behind), the
// channel carries an EventReset and then the whole state as EventMember
// events up to EventSynced, so a caller that mirrors the members rebuilds
// its mirror instead of missing a change. WatchNodes does the same for the
// cluster's node status.
package client
