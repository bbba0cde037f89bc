// Package abuse is the gateway's abuse suite: one test per attack that a
// hostile client can make on the data listener, each run against a real
// gateway (built by gateway.New, on an embedded NATS server with a quote
// worker behind it) over real sockets, with a raw HTTP/2 client on
// golang.org/x/net/http2's Framer for what no well-behaved client sends.
// Every case asserts that the abusive connection is refused or closed, that
// other clients are still answered, and that the gateway's goroutines and
// the process's RSS come back to their baseline.
//
// The package holds tests only; it sits beside the gateway and imports it
// from outside, as a client would.
package abuse
