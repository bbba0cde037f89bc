package baseline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/gateway/netconn"
)

// Variant is what the server does with a request.
type Variant string

// The variants of [Options].
const (
	Plain    Variant = "plain"
	Buffered Variant = "buffered"
	Body     Variant = "body"
)

// ParseVariant maps a variant name to its Variant.
func ParseVariant(s string) (Variant, error) {
	switch v := Variant(s); v {
	case Plain, Buffered, Body:
		return v, nil
	}
	return "", fmt.Errorf("unknown baseline variant %q: want plain, buffered or body", s)
}

// Defaults of [Options]: those of the gateway.
const (
	DefaultMaxConcurrentStreams = gateway.DefaultMaxConcurrentStreams
	DefaultReadBufferSize       = netconn.DefaultReadBuffer
)

// Options configure a [Server].
type Options struct {
	// Variant is what the server does; default [Plain].
	Variant Variant
	// Listen is the address ("host:port"; port 0 picks one).
	Listen string
	// TLSCert and TLSKey, both set, serve TLS with h2 by ALPN instead of
	// cleartext HTTP/1.1 and h2c.
	TLSCert, TLSKey string
	// MaxConcurrentStreams bounds HTTP/2 streams per connection; default
	// [DefaultMaxConcurrentStreams], the gateway's.
	MaxConcurrentStreams int
}

// AcceptedBody is the answer of the Plain and Buffered variants: the size
// and shape of the gateway's answer to one event.
var AcceptedBody = []byte(`{"accepted":1,"ids":["3hXq0tC2mYbL0aB7c"]}`)

// EnrichedBody is the answer of the Body variant: an enriched quote as the
// gateway returns it for Prefer: return=representation.
var EnrichedBody = []byte(`{"specversion":"1.0","id":"3hXq0tC2mYbL0aB7c","source":"sluice/worker/quotes","type":"marketdata.quote.enriched.v1",` +
	`"subject":"AAPL","time":"2026-11-23T11:09:58.042175846Z","datacontenttype":"application/json",` +
	`"data":{"symbol":"AAPL","bid":189.52,"ask":189.55,"bid_size":300,"ask_size":200,"venue":"XNAS",` +
	`"ts":"2026-11-23T11:09:58.042175846Z","mid":189.535,"spread":0.03,"spread_bps":1.58,` +
	`"instrument":{"symbol":"AAPL","name":"Apple Inc.","mic":"XNAS","currency":"USD","isin":"US0378331005",` +
	`"asset_class":"equity","tick_size":0.01,"lot_size":1},` +
	`"received_at":"2026-11-23T11:09:58.042175846Z","enriched_at":"2026-11-23T11:09:58.042748396Z"}}`)

// Server is a running baseline server.
type Server struct {
	opts     Options
	srv      *http.Server
	ln       *netconn.Listener
	serveErr chan error
	once     sync.Once
}

// New builds a Server; it does not listen yet.
func New(o Options) (*Server, error) {
	if o.Variant == "" {
		o.Variant = Plain
	}
	if _, err := ParseVariant(string(o.Variant)); err != nil {
		return nil, err
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("baseline: TLS needs both a certificate and a key")
	}
	if o.MaxConcurrentStreams <= 0 {
		o.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	s := &Server{opts: o, serveErr: make(chan error, 1)}
	var p http.Protocols
	p.SetHTTP1(true)
	if o.TLSCert != "" {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	s.srv = &http.Server{
		Handler:           s.handler(),
		Protocols:         &p,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: o.MaxConcurrentStreams},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	return s, nil
}

// handler reads the whole body and answers.
func (s *Server) handler() http.Handler {
	status, body := http.StatusAccepted, AcceptedBody
	if s.opts.Variant == Body {
		status, body = http.StatusOK, EnrichedBody
	}
	ct := []string{"application/json"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header()["Content-Type"] = ct
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	var co netconn.Options
	if s.opts.Variant == Buffered {
		co = netconn.Options{ReadBuffer: DefaultReadBufferSize, CoalesceWrites: true}
	}
	ln, err := netconn.Listen(s.opts.Listen, co, s.opts.TLSCert, s.opts.TLSKey)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	s.ln = ln
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	return nil
}

// Addr returns the listener's address once started.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting and waits for requests in flight, up to ctx; it
// also returns the error that ended serving early, if one did.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		err = s.srv.Shutdown(ctx)
		if s.ln != nil {
			err = errors.Join(err, s.ln.Drain(ctx), <-s.serveErr)
		}
	})
	return err
}
