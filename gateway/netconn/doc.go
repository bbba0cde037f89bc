// Package netconn shapes the gateway's accepted connections for Go's HTTP
// servers. It sits under the HTTP edge, between the TCP socket (and TLS, when
// configured) and net/http: [Listen] opens the data listener, and each
// connection it accepts reads through a buffer (Go's HTTP/2 server otherwise
// reads each frame header and payload with a syscall of its own) and writes
// through a coalescer that sends whatever arrives while one socket write runs
// in the next, so that the answers of a micro-batch leave in one syscall.
//
// The gateway and the benchmark suite's baseline servers both listen through
// it, so that the figures they are compared by share one socket setup.
package netconn
