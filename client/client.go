package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultAddr is where an agent's API listens unless told otherwise.
const DefaultAddr = "http://127.0.0.1:7400"

// maxResponse bounds a response body the client reads: the largest page of
// members the API serves fits with room to spare, and a confused server
// cannot make the client allocate without limit.
const maxResponse = 64 << 20

// Client calls one cpgd agent's HTTP API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	// streamHTTP serves watches: same transport, but no overall timeout,
	// since a stream lasts as long as its context.
	streamHTTP *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithToken makes every call present the agent's bearer token (the
// agent's --token).
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// WithHTTPClient makes the client send its requests through hc, for a
// custom transport, TLS or proxy. Watches use hc's transport without its
// Timeout, so a stream is not cut after that time.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http = hc }
}

// New returns a client of the agent at addr: a base URL such as
// "http://127.0.0.1:7400" (a path prefix is kept, for an agent behind a
// proxy) or a bare "host:port", taken as http.
func New(addr string, opts ...Option) (*Client, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("cpgd client: address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("cpgd client: address %q: scheme %q, want http or https", addr, u.Scheme)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("cpgd client: address %q: want scheme://host:port[/prefix]", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, http: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		return nil, errors.New("cpgd client: WithHTTPClient(nil)")
	}
	stream := *c.http
	stream.Timeout = 0
	c.streamHTTP = &stream
	return c, nil
}

// Addr is the agent's base URL.
func (c *Client) Addr() string { return c.base.String() }

// scopePath is the path of a call about one scope; the scope's name is
// escaped, so no name can reach another route.
func scopePath(scope, call string) string {
	return "/v1/scopes/" + url.PathEscape(scope) + "/" + call
}

// newRequest builds a request to path (which may carry a query) with the
// token and, when body is not nil, a JSON body.
func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	// path is escaped already (scopePath, leasePath): appended to the
	// base as text, so that an escaped "/" in a name stays escaped.
	target := c.base.String() + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("cpgd client: %s %s: %w", method, path, err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return nil, fmt.Errorf("cpgd client: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends one call and decodes a 200's JSON body into out (when not nil);
// any other status is an *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cpgd client: %s %s: %w", method, path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("cpgd client: %s %s: reading the answer: %w", method, path, err)
	}
	if len(data) > maxResponse {
		return fmt.Errorf("cpgd client: %s %s: answer larger than %d bytes", method, path, maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return responseError(method, path, resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("cpgd client: %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// unwrapURLError drops net/http's *url.Error wrapper, whose message
// repeats the method and URL that the client's own context already gives.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
