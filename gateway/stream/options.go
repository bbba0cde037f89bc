package stream

import (
	"errors"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

// Defaults of [Options].
const (
	DefaultMaxSymbols     = 1000
	DefaultMaxSubscribers = 10_000
	DefaultBuffer         = 256
	DefaultCacheSymbols   = 100_000
	DefaultKeepAlive      = 15 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultNotSentLowat   = 64 << 10
)

// DefaultMaxSubscribersPerKey is the default of
// [Options.MaxSubscribersPerKey], a tenth of [DefaultMaxSubscribers]: one
// client's leaked or looping subscriptions cannot take every slot of a
// gateway from the others.
const DefaultMaxSubscribersPerKey = 1_000

// Options configure a [Hub]. The zero value of every field but Conn means
// its default.
type Options struct {
	// Conn is the NATS connection enriched events are received on.
	Conn *nats.Conn
	// Subjects names the pipeline's subjects.
	Subjects schemas.Subjects
	// MaxSymbols bounds the symbols one request names (400 past it).
	MaxSymbols int
	// MaxSubscribers bounds the subscribers of this gateway at once (503
	// past it).
	MaxSubscribers int
	// MaxSubscribersPerKey bounds the streams one client holds open at
	// once (429 past it): the client a request's context names, see
	// [WithClient]. Requests naming none (a gateway without keys) are
	// bounded by MaxSubscribers only.
	MaxSubscribersPerKey int
	// Buffer bounds the events pending for one subscriber beyond its
	// snapshot: trades past it cut the subscriber; quotes are conflated per
	// symbol, so it bounds the distinct symbols pending at once.
	Buffer int
	// CacheSymbols bounds the symbols of each type in the last-value cache;
	// past it a symbol nobody names is evicted (its sequence starts again).
	CacheSymbols int
	// KeepAlive is the idle time after which a comment (SSE), an empty line
	// (NDJSON) or a ping (WebSocket) is sent.
	KeepAlive time.Duration
	// WriteTimeout bounds each write to a subscriber: a peer that stops
	// reading is disconnected after it.
	WriteTimeout time.Duration
	// NotSentLowat bounds the bytes of an HTTP/1.1 subscriber's connection
	// written and not yet sent (TCP_NOTSENT_LOWAT, Linux; see
	// [netconn.SetNotSentLowat]), set while its stream runs; negative: not
	// set. Without it the kernel grows a connection's send buffer up to
	// megabytes (net.ipv4.tcp_wmem's max) for a peer that stopped reading,
	// and the subscriber's queue, which conflates quotes, cuts a trade
	// subscriber and starts WriteTimeout, only fills once that is full.
	// Over HTTP/2 the stream's flow-control window (the client's) bounds
	// it instead: one connection carries many streams, publishing too.
	// The hub reaches the connection through [WithConn].
	NotSentLowat int
	// Replayer serves resumes and snapshots from a durable stream; nil is
	// core mode.
	Replayer Replayer
	// Logger receives the hub's logs (never per event).
	Logger *slog.Logger
	// Metrics receives the hub's metrics.
	Metrics *metrics.Set

	backlog int // feedBacklog; tests make it small
	// dropCheckEvery is a feed's drop check interval (default
	// dropCheckEvery); a field, not a package variable a test sets,
	// which raced with other tests' feeds under -race.
	dropCheckEvery time.Duration
}

func (o *Options) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MaxSymbols, DefaultMaxSymbols)
	def(&o.MaxSubscribers, DefaultMaxSubscribers)
	def(&o.MaxSubscribersPerKey, DefaultMaxSubscribersPerKey)
	def(&o.Buffer, DefaultBuffer)
	def(&o.CacheSymbols, DefaultCacheSymbols)
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	def(&o.NotSentLowat, DefaultNotSentLowat)
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.dropCheckEvery == 0 {
		o.dropCheckEvery = dropCheckEvery
	}
	if o.backlog == 0 {
		o.backlog = feedBacklog
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
}

// Validate reports the first option that cannot work.
func (o *Options) Validate() error {
	switch {
	case o.Conn == nil:
		return errors.New("stream: a NATS connection is required")
	case o.MaxSymbols < 0 || o.MaxSubscribers < 0 || o.MaxSubscribersPerKey < 0 || o.Buffer < 0 || o.CacheSymbols < 0:
		return errors.New("stream: bounds must not be negative")
	case o.KeepAlive < 0 || o.WriteTimeout < 0:
		return errors.New("stream: --stream-keepalive and --stream-write-timeout must not be negative")
	}
	return nil
}
