package stream

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// clientKey is the context key of [WithClient].
type clientKey struct{}

// WithClient returns a copy of ctx naming the client that makes a
// subscription, as authenticated in front of the hub (the gateway names a
// keys-file entry's client or a token's sub). The hub bounds the streams
// each named client holds open at once by [Options.MaxSubscribersPerKey]
// (429 past it). A request whose context names no client (a gateway
// without keys) is bounded by [Options.MaxSubscribers] alone.
func WithClient(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

func clientOf(ctx context.Context) string {
	c, _ := ctx.Value(clientKey{}).(string)
	return c
}

// connKey is the context key of [WithConn].
type connKey struct{}

// WithConn returns a copy of ctx holding the connection a request came
// on; set it in http.Server.ConnContext. The hub sets
// [Options.NotSentLowat] on the connection of an HTTP/1.1 stream while the
// stream runs.
func WithConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func connOf(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	return c
}

// clientCounts counts each named client's open streams. A client's entry
// goes when its last stream ends, so memory follows the clients streaming
// now, not every client ever seen.
type clientCounts struct {
	mu  sync.Mutex
	max int
	n   map[string]int
}

// acquire counts one more stream of client, or refuses it with 429 when
// the client already holds max.
func (c *clientCounts) acquire(client string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[client] >= c.max {
		return &StatusError{Status: http.StatusTooManyRequests, Title: "Too many streams for this client",
			Detail: fmt.Sprintf("client %q already has %d streams open on this gateway (--stream-max-subscribers-per-key): "+
				"close one, or subscribe to several symbols in one stream (symbols=A,B,C or *)", client, c.max),
			RetryAfter: 1}
	}
	if c.n == nil {
		c.n = make(map[string]int)
	}
	c.n[client]++
	return nil
}

func (c *clientCounts) release(client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[client] <= 1 {
		delete(c.n, client)
		return
	}
	c.n[client]--
}

// count returns the streams client holds open.
func (c *clientCounts) count(client string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[client]
}
