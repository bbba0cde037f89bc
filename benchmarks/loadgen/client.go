package loadgen

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Proto is the HTTP version and transport a load generator speaks.
type Proto string

// The protocols of [ClientOptions].
const (
	// ProtoH1 is HTTP/1.1 over cleartext TCP.
	ProtoH1 Proto = "h1"
	// ProtoH2C is HTTP/2 over cleartext TCP with prior knowledge (no
	// upgrade).
	ProtoH2C Proto = "h2c"
	// ProtoH2 is HTTP/2 over TLS, chosen by ALPN.
	ProtoH2 Proto = "h2"
)

// ParseProto maps "h1", "h2c" or "h2" to its Proto.
func ParseProto(s string) (Proto, error) {
	switch p := Proto(s); p {
	case ProtoH1, ProtoH2C, ProtoH2:
		return p, nil
	}
	return "", fmt.Errorf("unknown protocol %q: want h1, h2c or h2", s)
}

// Scheme returns the URL scheme of p: "https" for h2, else "http".
func (p Proto) Scheme() string {
	if p == ProtoH2 {
		return "https"
	}
	return "http"
}

// ClientOptions shape the connections of a load generator. The zero value of
// a field means its default.
type ClientOptions struct {
	// Proto is the protocol; default [ProtoH2C].
	Proto Proto
	// Conns is the number of connections; default 16.
	Conns int
	// Streams is the number of requests in flight on one connection (HTTP/2
	// streams); default 32. Over HTTP/1.1, where a connection carries one
	// request at a time, each of the Conns transports opens Streams
	// connections instead.
	Streams int
	// TLS is the client TLS configuration for [ProtoH2] (its RootCAs trust
	// the server). Each transport gets its own clone: HTTP/2 setup mutates
	// NextProtos.
	TLS *tls.Config
}

// Defaults of [ClientOptions].
const (
	DefaultConns   = 16
	DefaultStreams = 32
)

func (o *ClientOptions) setDefaults() {
	if o.Proto == "" {
		o.Proto = ProtoH2C
	}
	if o.Conns <= 0 {
		o.Conns = DefaultConns
	}
	if o.Streams <= 0 {
		o.Streams = DefaultStreams
	}
}

// NewTransports returns one transport per connection of o; [Run] uses them
// for HTTP/1.1 only (HTTP/2 runs on the package's framer client). Over
// HTTP/2 each
// transport holds a single connection and never opens a second one
// (StrictMaxConcurrentRequests): a request past the server's stream limit
// waits for a free stream on the same connection. That is what forces the
// shape "Conns connections of up to Streams streams each": a shared transport
// would pack every request onto as few connections as the server allows.
func NewTransports(o ClientOptions) ([]*http.Transport, error) {
	o.setDefaults()
	if o.Proto == ProtoH2 && o.TLS == nil {
		return nil, fmt.Errorf("proto h2 needs a TLS configuration")
	}
	ts := make([]*http.Transport, o.Conns)
	for i := range ts {
		ts[i] = newTransport(o)
	}
	return ts, nil
}

func newTransport(o ClientOptions) *http.Transport {
	var p http.Protocols
	switch o.Proto {
	case ProtoH1:
		p.SetHTTP1(true)
	case ProtoH2C:
		p.SetUnencryptedHTTP2(true)
	case ProtoH2:
		p.SetHTTP2(true)
	}
	t := &http.Transport{
		Protocols:          &p,
		DialContext:        (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		DisableCompression: true,
		IdleConnTimeout:    90 * time.Second,
		HTTP2:              &http.HTTP2Config{StrictMaxConcurrentRequests: true},
	}
	if o.Proto == ProtoH1 {
		t.MaxConnsPerHost = o.Streams
		t.MaxIdleConnsPerHost = o.Streams
	}
	if o.TLS != nil {
		t.TLSClientConfig = o.TLS.Clone()
	}
	return t
}

// CloseTransports closes the idle connections of ts.
func CloseTransports(ts []*http.Transport) {
	for _, t := range ts {
		t.CloseIdleConnections()
	}
}
