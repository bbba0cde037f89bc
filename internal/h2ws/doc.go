// Package h2ws runs github.com/coder/websocket over HTTP/2 streams
// (RFC 8441, "Bootstrapping WebSockets with HTTP/2"), which the library
// (v1.8.15) does not: its Accept needs an HTTP/1.1 upgrade and a
// connection to hijack, and its Dial a 101 answer whose body it can write
// to (coder/websocket#539 adds HTTP/2 and is not released).
//
// The framing stays the library's. [Accept] turns an extended CONNECT
// (Method "CONNECT", Header[":protocol"] "websocket", as net/http's server
// and gateway/h2edge present it) into the upgrade the library checks, and
// gives it, in place of a hijacked connection, the stream itself: reads
// from the request body, writes to the ResponseWriter with a flush each.
// The answer is 200 with Sec-WebSocket-Protocol (no Upgrade, Connection or
// Sec-WebSocket-Accept: RFC 8441, 5). [Transport] does the reverse for
// Dial: the library's upgrade request goes out as an extended CONNECT on an
// HTTP/2 RoundTripper, and the 200 comes back as the 101 the library
// checks, its body writable.
//
// net/http's HTTP/2 server accepts extended CONNECT only with
// GODEBUG=http2xconnect=1, which this package sets by importing
// internal/xconnect; gateway/h2edge needs Options.EnableConnectProtocol.
// net/http's client Transport refuses the :protocol field in Go 1.26, so
// [Transport] needs golang.org/x/net/http2's.
package h2ws
