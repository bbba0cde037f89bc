package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/tracing"
	"github.com/sluice-dev/sluice/schemas"
)

// Defaults of [Options] and [BatchOptions], chosen by measurement on the
// 2-core reference machine (see benchmarks/README.md).
const (
	DefaultListen               = "127.0.0.1:8080"
	DefaultMaxBodyBytes         = 4 << 20
	DefaultMaxEvents            = 10_000
	DefaultReadHeaderTimeout    = 5 * time.Second
	DefaultBodyTimeout          = 10 * time.Second
	DefaultBodyMinRate          = 64 << 10
	DefaultIdleTimeout          = 120 * time.Second
	DefaultMaxConcurrentStreams = 32
	DefaultRequestTimeout       = 2 * time.Second
	DefaultMaxWaiting           = 16_384
	DefaultReadBufferSize       = 16 << 10
	DefaultBatchMaxEvents       = 128
	DefaultBatchMaxBytes        = 128 << 10
	DefaultBatchLinger          = time.Millisecond
	DefaultBatchMaxPendingBytes = 64 << 20
)

// BatchOptions bound the micro-batcher of each event type. A batch is
// flushed at MaxEvents, MaxBytes or Linger, whichever comes first, or at
// once when no other request of its type is in flight and requests arrive
// further apart than Linger. The zero value means the defaults.
type BatchOptions struct {
	// MaxEvents flushes a batch holding this many events.
	MaxEvents int
	// MaxBytes flushes a batch before it would grow past this size; it must
	// stay below the NATS server's max_payload. The default is 128 KiB, or
	// less when the connection's server has a smaller max_payload; in any
	// case a batch is flushed before it would pass max_payload, read from
	// the connection at every request (it is unknown, 0, until the
	// connection first meets a server).
	MaxBytes int
	// Linger is the longest an event waits for its batch to fill.
	Linger time.Duration
	// MaxPendingBytes bounds the encoded events held by the batcher of one
	// type (filling plus being published); past it requests get 503.
	MaxPendingBytes int64
}

// Options configure a [Server]. The zero value of every field means its
// default; Conn is required.
type Options struct {
	// Conn is the NATS connection batches are published on.
	Conn *nats.Conn
	// Subjects names the pipeline's subjects (default prefix "sluice").
	Subjects schemas.Subjects
	// Listen is the data listener address ("host:port"; port 0 picks one).
	Listen string
	// TLSCert and TLSKey, both set, serve TLS with h2 by ALPN instead of
	// cleartext HTTP/1.1 and h2c.
	TLSCert, TLSKey string
	// MaxBodyBytes bounds a request body, on the wire and, for a gzip or
	// zstd Content-Encoding, after decompression (413 past it).
	MaxBodyBytes int64
	// MaxEvents bounds the events of one request (413 past it).
	MaxEvents int
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body, from the end of its
	// headers: a client that stalls mid-upload is answered 408 and its
	// stream (HTTP/2) or connection (HTTP/1.1) freed. Bodies larger than
	// BodyMinRate × 1 s get more time as they arrive: BodyTimeout plus
	// one second per BodyMinRate bytes received.
	BodyTimeout time.Duration
	// BodyMinRate is the slowest upload, in bytes per second, that a large
	// body may sustain beyond BodyTimeout.
	BodyMinRate int64
	// IdleTimeout closes connections idle this long.
	IdleTimeout time.Duration
	// MaxConcurrentStreams bounds HTTP/2 streams per connection (default
	// 32, not Go's 250: when the gateway's CPU is the bottleneck, streams
	// past what it serves only wait inside Go's HTTP/2 server, unfairly
	// and holding memory; past the limit they wait in the client, in
	// order. See benchmarks/README.md, "Why the overload is run twice").
	MaxConcurrentStreams int
	// RequestTimeout is the deadline of a request waiting for its result
	// (504 past it).
	RequestTimeout time.Duration
	// MaxWaiting bounds requests waiting for results at once (503 past it).
	MaxWaiting int
	// ReadBufferSize is the buffered reader put around each accepted
	// connection (Go's h2c server otherwise reads each frame with its own
	// syscall); -1 disables it.
	ReadBufferSize int
	// NoWriteCoalescing writes each of the HTTP server's flushes to the
	// socket at once instead of through the per-connection coalescer that
	// sends the writes arriving during one syscall together in the next.
	NoWriteCoalescing bool
	// HTTP2Server chooses the server of HTTP/2 connections (h2c and TLS
	// h2): "fast" (or empty) gateway/h2edge's frame loop, with the events
	// route on its fast path and every other route on the same handler;
	// "std" net/http's. HTTP/1.1 is net/http's either way.
	HTTP2Server string
	// Batch bounds the micro-batchers.
	Batch BatchOptions
	// Delivery is the delivery mode of each event type (the zero value:
	// core for every type). A durable type's request is answered 202 once
	// the stream has stored its batches.
	Delivery bus.Modes
	// Durable configures the publishing of the durable types.
	Durable DurableOptions
	// Admission configures who gets in: keys, rate limits, concurrency
	// limits and queue-depth shedding.
	Admission AdmissionOptions
	// Streams, when set, serves GET /v1/streams/{type} (subscribers; see
	// package gateway/stream). If it has a Close method, Shutdown calls it
	// first, so that its streams end and let the listener drain.
	Streams http.Handler
	// Source is the CloudEvents source of events that come without one.
	Source string
	// Logger receives the gateway's logs (never per event).
	Logger *slog.Logger
	// Metrics receives the gateway's metrics.
	Metrics *metrics.Set
	// Tracing, when not nil, traces sampled requests: a request span, and
	// a span per batch holding a traced request's events (see package
	// ops/tracing). Nil: no spans, at no cost.
	Tracing *tracing.Provider
}

func (o *Options) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	def(&o.MaxEvents, DefaultMaxEvents)
	defDur(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	defDur(&o.BodyTimeout, DefaultBodyTimeout)
	if o.BodyMinRate == 0 {
		o.BodyMinRate = DefaultBodyMinRate
	}
	defDur(&o.IdleTimeout, DefaultIdleTimeout)
	def(&o.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	defDur(&o.RequestTimeout, DefaultRequestTimeout)
	def(&o.MaxWaiting, DefaultMaxWaiting)
	def(&o.ReadBufferSize, DefaultReadBufferSize)
	def(&o.Batch.MaxEvents, DefaultBatchMaxEvents)
	if o.Batch.MaxBytes == 0 {
		o.Batch.MaxBytes = DefaultBatchMaxBytes
		if o.Conn != nil {
			if mp := int(o.Conn.MaxPayload()); mp > 0 {
				// A server with a small max_payload: the default follows.
				o.Batch.MaxBytes = min(o.Batch.MaxBytes, mp-frameHeaderRoom)
			}
		}
	}
	defDur(&o.Batch.Linger, DefaultBatchLinger)
	if o.Batch.MaxPendingBytes == 0 {
		o.Batch.MaxPendingBytes = DefaultBatchMaxPendingBytes
	}
	o.Durable.setDefaults()
	if o.Source == "" {
		host, _ := os.Hostname()
		o.Source = "sluice/gateway/" + host
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
}

// HTTP2Std and HTTP2Fast are the values of Options.HTTP2Server.
const (
	HTTP2Std  = "std"
	HTTP2Fast = "fast"
)

// Validate reports the first option that cannot work.
func (o *Options) Validate() error {
	switch {
	case o.Conn == nil:
		return errors.New("gateway: a NATS connection is required")
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return errors.New("gateway: --tls-cert and --tls-key go together")
	case o.BodyTimeout < 0 || o.BodyMinRate < 0:
		return errors.New("gateway: --body-timeout and --body-min-rate must not be negative")
	case o.MaxBodyBytes < 0 || o.MaxEvents < 0 || o.MaxWaiting < 0 || o.MaxConcurrentStreams < 0:
		return errors.New("gateway: bounds must not be negative")
	case o.HTTP2Server != "" && o.HTTP2Server != HTTP2Std && o.HTTP2Server != HTTP2Fast:
		return fmt.Errorf("gateway: --http2-server %q: want %q or %q", o.HTTP2Server, HTTP2Std, HTTP2Fast)
	case len(o.Source) > schemas.MaxSourceLen:
		return fmt.Errorf("gateway: source %.40q... is %d characters long, more than %d", o.Source, len(o.Source), schemas.MaxSourceLen)
	case o.Batch.MaxEvents < 0 || o.Batch.MaxBytes < 0 || o.Batch.Linger < 0 || o.Batch.MaxPendingBytes < 0:
		return errors.New("gateway: batch bounds must not be negative")
	}
	if o.Delivery.Any(bus.ModeDurable) {
		if err := o.Durable.validate(); err != nil {
			return err
		}
	}
	if mp := o.Conn.MaxPayload(); mp > 0 && int64(o.Batch.MaxBytes) > mp {
		return fmt.Errorf("gateway: batch max bytes %d exceeds the NATS server's max_payload %d", o.Batch.MaxBytes, mp)
	}
	return nil
}
