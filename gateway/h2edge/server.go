package h2edge

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of [Options].
const (
	DefaultMaxConcurrentStreams = 250
	DefaultInitialWindowSize    = 1 << 20
	DefaultConnWindowSize       = 4 << 20
	DefaultMaxReadFrameSize     = 16 << 10
	DefaultMaxHeaderListSize    = 64 << 10
	DefaultReadBuffer           = 16 << 10
	DefaultControlFrameLimit    = 100
	DefaultMaxEarlyResets       = 1000
	DefaultReadHeaderTimeout    = 10 * time.Second
)

// Options configure a [Server]; the zero value of each field means its
// default.
type Options struct {
	// Handler answers every request Fast does not claim, each on its own
	// goroutine.
	Handler http.Handler
	// Fast, if set, serves the requests it claims on the connection's
	// goroutine (the fast path; see [FastHandler]).
	Fast FastHandler
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS: the streams
	// a client may have open at once (more are refused).
	MaxConcurrentStreams uint32
	// InitialWindowSize is the receive window of each stream, the request
	// body bytes a client may send ahead of the handler's reads.
	InitialWindowSize int32
	// ConnWindowSize is the receive window of the connection.
	ConnWindowSize int32
	// MaxReadFrameSize is SETTINGS_MAX_FRAME_SIZE: the largest frame
	// payload read (larger: FRAME_SIZE_ERROR).
	MaxReadFrameSize uint32
	// MaxHeaderListSize is SETTINGS_MAX_HEADER_LIST_SIZE: a request's
	// header block, decoded; past it the request is answered 431, and a
	// header block whose frames carry more than twice it (CONTINUATION
	// floods) closes the connection.
	MaxHeaderListSize uint32
	// ReadBuffer is the buffered reader around each connection, in bytes.
	ReadBuffer int
	// ControlFrameLimit bounds the PING and SETTINGS frames (ACKs aside) a
	// connection may send in one second; past it the connection ends with
	// GOAWAY ENHANCE_YOUR_CALM. Negative: no bound.
	ControlFrameLimit int
	// MaxEarlyResets bounds the streams a client may reset, in one second,
	// before their handler answered (rapid reset); past it the connection
	// ends with GOAWAY ENHANCE_YOUR_CALM. Negative: no bound.
	MaxEarlyResets int
	// ReadHeaderTimeout bounds reading the preface and any one frame (a
	// header block with its CONTINUATION frames counts as one) once its
	// first byte is in (default 10s; negative: none).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a connection that has had no open stream for
	// that long, with GOAWAY NO_ERROR (0: never).
	IdleTimeout time.Duration
	// ReadTimeout bounds reading each request body, from its headers: a
	// read waiting past it fails with os.ErrDeadlineExceeded (0: none). A
	// handler can move it with http.ResponseController.SetReadDeadline.
	ReadTimeout time.Duration
	// WriteTimeout bounds each stream from its headers to its last frame:
	// past it the stream is reset (0: none). A handler can move it with
	// http.ResponseController.SetWriteDeadline.
	WriteTimeout time.Duration
	// EnableConnectProtocol advertises SETTINGS_ENABLE_CONNECT_PROTOCOL
	// and accepts extended CONNECT (RFC 8441): a CONNECT with :protocol,
	// :scheme, :path and :authority reaches Handler with Method "CONNECT",
	// URL from :path and the protocol in Header[":protocol"] (as net/http's
	// server presents it), its DATA both ways read and written while the
	// handler runs. Off, a :protocol is refused (PROTOCOL_ERROR), as a
	// handler that does not speak the protocol would take the request for
	// a tunnel it cannot serve.
	EnableConnectProtocol bool
	// OnError, if set, is called with a short name for each protocol
	// error and abuse the server answers (e.g. "rapid_reset", "ping_flood"),
	// from the connection's goroutine. It must not block.
	OnError func(name string)
	// Logger logs connection errors at debug level (nil: none).
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.MaxConcurrentStreams == 0 {
		o.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if o.InitialWindowSize <= 0 {
		o.InitialWindowSize = DefaultInitialWindowSize
	}
	if o.ConnWindowSize < 65535 {
		o.ConnWindowSize = DefaultConnWindowSize
	}
	if o.MaxReadFrameSize < 16<<10 || o.MaxReadFrameSize > 1<<24-1 {
		o.MaxReadFrameSize = DefaultMaxReadFrameSize
	}
	if o.MaxHeaderListSize == 0 {
		o.MaxHeaderListSize = DefaultMaxHeaderListSize
	}
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = DefaultReadBuffer
	}
	if o.ControlFrameLimit == 0 {
		o.ControlFrameLimit = DefaultControlFrameLimit
	}
	if o.MaxEarlyResets == 0 {
		o.MaxEarlyResets = DefaultMaxEarlyResets
	}
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.Handler == nil {
		o.Handler = http.NotFoundHandler()
	}
}

// Server serves HTTP/2 connections handed to it one at a time by
// [Server.ServeConn]. It does not listen: the gateway's http.Server accepts,
// sniffs h2c or negotiates h2 by ALPN, and hands the connection over
// through [Server.ConfigureServer].
type Server struct {
	opts Options

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
}

// New returns a server for opts.
func New(opts Options) *Server {
	opts.setDefaults()
	return &Server{opts: opts, conns: make(map[*conn]struct{})}
}

// ServeConn serves the HTTP/2 connection c until it ends, and closes it.
// With sawPreface, the client preface has already been read from c (as
// net/http does before it hands over an h2c connection). ctx is the base
// of every request's context; it does not end the connection.
func (s *Server) ServeConn(ctx context.Context, c net.Conn, sawPreface bool) {
	s.serveWith(ctx, c, s.opts.Handler, sawPreface)
}

func (s *Server) track(cc *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shutdown {
			return false
		}
		s.conns[cc] = struct{}{}
		return true
	}
	delete(s.conns, cc)
	return true
}

// StartShutdown sends GOAWAY with the last stream id to every connection:
// streams already opened finish, new ones are refused, and each
// connection closes once its streams are done. Connections handed over
// later are closed at once. It does not wait (http.Server.Shutdown does,
// when it was registered there by [Server.ConfigureServer]).
func (s *Server) StartShutdown() {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*conn, 0, len(s.conns))
	for cc := range s.conns {
		conns = append(conns, cc)
	}
	s.mu.Unlock()
	for _, cc := range conns {
		cc.startShutdown()
	}
}

// Conns returns the connections being served.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// nextProtoUnencrypted is net/http's TLSNextProto key for h2c connections
// (with prior knowledge) that it hands over after reading their preface.
const nextProtoUnencrypted = "unencrypted_http2"

// ConfigureServer makes hs hand its HTTP/2 connections to s: TLS ones whose
// ALPN chose h2, and h2c ones (prior knowledge) once net/http has read the
// preface; HTTP/1.1 stays with hs. Requests go to hs's Handler (through
// net/http's serverHandler: hs.Handler, or http.DefaultServeMux). hs's
// Shutdown starts s's ([Server.StartShutdown]) and waits for its
// connections, which net/http counts as active until they end. hs.Protocols
// must enable HTTP2 (TLS) or UnencryptedHTTP2 (h2c).
func (s *Server) ConfigureServer(hs *http.Server) {
	if hs.TLSNextProto == nil {
		hs.TLSNextProto = make(map[string]func(*http.Server, *tls.Conn, http.Handler))
	}
	hs.TLSNextProto["h2"] = func(_ *http.Server, c *tls.Conn, h http.Handler) {
		s.serveHandedOver(c, h, false)
	}
	hs.TLSNextProto[nextProtoUnencrypted] = func(_ *http.Server, c *tls.Conn, h http.Handler) {
		nc := c.NetConn()
		if u, ok := nc.(interface{ UnencryptedNetConn() net.Conn }); ok {
			nc = u.UnencryptedNetConn()
		}
		s.serveHandedOver(nc, h, true)
	}
	hs.RegisterOnShutdown(s.StartShutdown)
}

// serveHandedOver serves a connection net/http handed over with its
// handler h, which carries the connection's base context.
func (s *Server) serveHandedOver(c net.Conn, h http.Handler, sawPreface bool) {
	ctx := context.Background()
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		ctx = bc.BaseContext()
	}
	s.serveWith(ctx, c, h, sawPreface)
}

func (s *Server) serveWith(ctx context.Context, c net.Conn, h http.Handler, sawPreface bool) {
	cc := newConn(s, ctx, c)
	cc.handler = h
	if !s.track(cc, true) {
		_ = c.Close()
		return
	}
	defer s.track(cc, false)
	cc.serve(sawPreface)
}
