package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/ops"
	"github.com/sluice-dev/sluice/ops/tracing"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

// parse parses args into fs for a command that takes no positional
// arguments, applies SLUICE_* variables and reports a usage error as exit
// code 2 (-h prints the usage and gives ok false with code 0). A stray
// argument is a usage error, not ignored: "--coalesce-writes false" would
// otherwise leave the flag at true without a word (booleans take
// --name=false).
func parse(fs *flag.FlagSet, name, summary string, args []string) (ok bool, code int) {
	if ok, code = parseOperands(fs, name, "", summary, args); ok && fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "sluice %s: unexpected argument %q (a boolean flag takes its value as --name=false)\n", name, fs.Arg(0))
		return false, 2
	}
	return ok, code
}

// parseOperands is [parse] for a command whose positional arguments,
// named in operands ("FILE"), the caller checks in fs.Args: flags may come
// before or after them (see [ops.ParseInterspersed]).
func parseOperands(fs *flag.FlagSet, name, operands, summary string, args []string) (ok bool, code int) {
	fs.Usage = ops.Usage(fs, strings.TrimSpace(name+" "+operands), summary)
	if err := ops.ParseInterspersed(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, 0
		}
		return false, 2
	}
	if err := ops.ApplyEnv(fs); err != nil {
		fmt.Fprintf(os.Stderr, "sluice %s: %v\n", name, err)
		return false, 2
	}
	return true, 0
}

// commonFlags are shared by every command that talks to NATS.
type commonFlags struct {
	nats      string
	auth      natsAuth
	prefix    string
	logLevel  string
	logFormat string
}

func (c *commonFlags) register(fs *flag.FlagSet, withNATS bool) {
	if withNATS {
		fs.StringVar(&c.nats, "nats", "nats://127.0.0.1:4222", "NATS server URLs, comma separated (the client rides out the loss of any one)")
		c.auth.register(fs)
	}
	fs.StringVar(&c.prefix, "prefix", schemas.DefaultPrefix, "subject prefix: pipelines with different prefixes share a NATS cluster without meeting")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
}

// connect connects to --nats as a long-running service ([connectNATS])
// with the credentials, CA and inbox prefix of the flags.
func (c *commonFlags) connect(name string, log *slog.Logger) (*nats.Conn, error) {
	opts, err := c.auth.options()
	if err != nil {
		return nil, err
	}
	return connectNATS(c.nats, name, log, opts...)
}

// connectOnce connects to --nats for a one-shot command: no retries, and a
// refused certificate or credential explained as [connectNATS] does.
func (c *commonFlags) connectOnce(name string) (*nats.Conn, error) {
	opts, err := c.auth.options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.nats, append(opts, nats.Name(name))...)
	if err != nil {
		err, _ = permanentConnectError(err)
		return nil, fmt.Errorf("connecting to NATS at %s: %w", c.nats, err)
	}
	return nc, nil
}

func (c *commonFlags) logger() (*slog.Logger, error) {
	return ops.NewLogger(os.Stderr, c.logLevel, c.logFormat)
}

// gatewayFlags are the data listener's bounds.
type gatewayFlags struct {
	opts     gateway.Options
	keysFile string
	jwt      admit.JWTOptions
	stream   stream.Options
	noStream bool
}

func (g *gatewayFlags) register(fs *flag.FlagSet) {
	o := &g.opts
	fs.StringVar(&o.Listen, "listen", gateway.DefaultListen, "data listener address: HTTP/1.1 and h2c on one port (h2 by ALPN with TLS)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves TLS instead of cleartext")
	fs.StringVar(&o.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.Int64Var(&o.MaxBodyBytes, "max-body", gateway.DefaultMaxBodyBytes, "largest request body in bytes, on the wire and after decompression (Content-Encoding gzip or zstd); larger bodies get 413 (protects memory: a request holds its whole body, and a decompression bomb stops inflating here)")
	fs.IntVar(&o.MaxEvents, "max-events", gateway.DefaultMaxEvents, "most events in one request; more get 413")
	fs.DurationVar(&o.ReadHeaderTimeout, "read-header-timeout", gateway.DefaultReadHeaderTimeout, "time allowed to read a request's headers (protects against slow clients)")
	fs.DurationVar(&o.BodyTimeout, "body-timeout", gateway.DefaultBodyTimeout, "time allowed to read a request's body after its headers; a stalled upload gets 408 (protects streams and memory from clients that stop sending)")
	fs.Int64Var(&o.BodyMinRate, "body-min-rate", gateway.DefaultBodyMinRate, "bytes/s a large body must keep arriving at: it gets --body-timeout plus one second per this many bytes")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", gateway.DefaultIdleTimeout, "idle connections are closed after this")
	fs.IntVar(&o.MaxConcurrentStreams, "max-streams", gateway.DefaultMaxConcurrentStreams, "HTTP/2 concurrent streams per connection")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", gateway.DefaultRequestTimeout, "deadline for a result with Prefer: return=representation; past it 504")
	fs.IntVar(&o.MaxWaiting, "max-waiting", gateway.DefaultMaxWaiting, "requests waiting for results at once; more get 503 (watch sluice_gateway_waiting_requests)")
	fs.IntVar(&o.ReadBufferSize, "read-buffer", gateway.DefaultReadBufferSize, "buffered reader per connection in bytes, -1 to disable")
	fs.StringVar(&o.HTTP2Server, "http2-server", gateway.HTTP2Fast, "server of HTTP/2 connections (h2c and TLS h2): fast (gateway/h2edge's frame loop, POST /v1/events/{type} without a goroutine per stream, every other route through the same handler) or std (net/http's); HTTP/1.1 stays on net/http")
	fs.Var(negatedBool{&o.NoWriteCoalescing}, "coalesce-writes", "send the HTTP server's writes that arrive while one socket write runs together in the next (false: each at once, one syscall per HTTP/2 flush)")
	fs.IntVar(&o.Batch.MaxEvents, "batch-max-events", gateway.DefaultBatchMaxEvents, "a batch is flushed at this many events")
	fs.IntVar(&o.Batch.MaxBytes, "batch-max-bytes", gateway.DefaultBatchMaxBytes, "a batch is flushed before it grows past this many bytes (below the NATS max_payload)")
	fs.DurationVar(&o.Batch.Linger, "batch-linger", gateway.DefaultBatchLinger, "longest an event waits for its batch to fill")
	fs.Int64Var(&o.Batch.MaxPendingBytes, "batch-max-pending", gateway.DefaultBatchMaxPendingBytes, "bytes of events the batcher of one type holds; past it 503 (NATS not keeping up)")
	registerDelivery(fs, &o.Delivery)
	registerDurableFlags(fs, &o.Durable)
	fs.StringVar(&o.Source, "source", "", "CloudEvents source of events sent without one (default sluice/gateway/<hostname>)")
	a := &o.Admission
	fs.StringVar(&g.keysFile, "keys-file", "", "API keys file (JSON, keys stored as SHA-256; see 'sluice keys hash'); when set every request needs a key")
	fs.Float64Var(&a.AddressRate, "client-rate", 0, "requests/s per remote address when no keys file is set (0: unlimited); past it 429")
	fs.IntVar(&a.AddressBurst, "client-burst", 0, "token bucket size per remote address (default: the rate)")
	fs.StringVar(&g.jwt.JWKS, "jwt-jwks", "", "JWKS of the keys that sign JWT bearer tokens: a file or an https:// URL (fetched hourly and on an unknown kid, at most once a minute); when set every request needs a token or an API key (see README, Security)")
	fs.StringVar(&g.jwt.Issuer, "jwt-issuer", "", "required iss claim of JWT bearer tokens (with --jwt-jwks)")
	fs.StringVar(&g.jwt.Audience, "jwt-audience", "", "required aud claim of JWT bearer tokens (with --jwt-jwks)")
	fs.DurationVar(&a.AuditInterval, "audit-interval", admit.DefaultAuditInterval, "the denial audit logs a refused request (401, 403, 429) at most once per client and reason per interval, with the count suppressed since its last line (watch sluice_gateway_denials_total)")
	fs.IntVar(&a.Concurrency.Min, "concurrency-min", 0, "lowest adaptive concurrency limit per worker group (default 8)")
	fs.IntVar(&a.Concurrency.Max, "concurrency-max", 0, "highest adaptive concurrency limit per worker group (default 16384); past the current limit 503")
	fs.Var(queueDelayFlag{a}, "shed-max-queue-delay", "a group's depth bound is its peak drain rate times this (default 250ms), or per type: quote=250ms,trade=5m; priorities are shed at 25/50/75/100% of it")
	fs.Int64Var(&a.Shed.MinDepth, "shed-min-depth", 0, "lowest depth bound of a group in events (default 128: one gateway batch); it only matters for groups slower than it divided by --shed-max-queue-delay")
	fs.Int64Var(&a.Shed.MaxDepth, "shed-max-depth", 0, "highest depth bound of a group in events (default 1048576)")
	so := &g.stream
	fs.Var(negatedBool{&g.noStream}, "streams", "serve GET /v1/streams/{type} to subscribers (SSE, NDJSON, WebSocket) on the data listener")
	fs.IntVar(&so.MaxSymbols, "stream-max-symbols", stream.DefaultMaxSymbols, "most symbols one subscription names; more get 400 (symbols=* asks for all)")
	fs.IntVar(&so.MaxSubscribers, "stream-max-subscribers", stream.DefaultMaxSubscribers, "subscribers served at once; more get 503 (watch sluice_stream_subscribers)")
	fs.IntVar(&so.MaxSubscribersPerKey, "stream-max-subscribers-per-key", stream.DefaultMaxSubscribersPerKey, "streams one client (a --keys-file entry's client, a token's sub) holds open at once; more get 429 (watch sluice_stream_subscribers_limited_total). Without keys only --stream-max-subscribers applies")
	fs.IntVar(&so.Buffer, "stream-buffer", stream.DefaultBuffer, "events pending per subscriber: quotes past it are conflated per symbol, a subscriber this far behind on trades is cut with its resume token (memory per subscriber)")
	fs.IntVar(&so.CacheSymbols, "stream-cache-symbols", stream.DefaultCacheSymbols, "symbols per type in the last-value cache that snapshots come from; past it a symbol no subscriber names is evicted")
	fs.DurationVar(&so.KeepAlive, "stream-keepalive", stream.DefaultKeepAlive, "idle time after which a stream gets a keep-alive (SSE comment, NDJSON empty line, WebSocket ping) so that proxies keep it")
	fs.DurationVar(&so.WriteTimeout, "stream-write-timeout", stream.DefaultWriteTimeout, "time allowed for each write to a subscriber; a peer that stops reading is disconnected after it")
	fs.IntVar(&so.NotSentLowat, "stream-notsent-lowat", stream.DefaultNotSentLowat, "bytes of an HTTP/1.1 subscriber's connection the kernel may hold unsent (TCP_NOTSENT_LOWAT, Linux; 0: off, the kernel then grows the send buffer to megabytes for a peer that stopped reading before its quotes are conflated)")
}

// streamOptions returns the hub's options as the flags set them.
func (g *gatewayFlags) streamOptions() stream.Options {
	so := g.stream
	if so.NotSentLowat == 0 {
		so.NotSentLowat = -1 // --stream-notsent-lowat=0 is off; the Options' 0 is the default
	}
	return so
}

// attachStreams builds the subscribers' hub on o's connection and mounts
// it in o; it returns nil with --streams=false.
func (g *gatewayFlags) attachStreams(o *gateway.Options) (*stream.Hub, error) {
	if g.noStream {
		return nil, nil
	}
	so := g.streamOptions()
	so.Conn, so.Subjects, so.Logger, so.Metrics = o.Conn, o.Subjects, o.Logger, o.Metrics
	if o.Delivery.Any(bus.ModeDurable) {
		// Durable types are served from the enriched stream: snapshots,
		// resumes and live events in stream order.
		r, err := stream.NewJetStream(o.Conn, o.Subjects, o.Delivery)
		if err != nil {
			return nil, err
		}
		so.Replayer = r
	}
	hub, err := stream.NewHub(so)
	if err != nil {
		return nil, err
	}
	o.Streams = hub
	return hub, nil
}

// build loads the keys file and the JWKS, if any, into the options; log
// receives JWKS fetch errors.
func (g *gatewayFlags) build(log *slog.Logger) (gateway.Options, error) {
	o := g.opts
	if g.keysFile != "" {
		kf, err := admit.LoadKeys(g.keysFile)
		if err != nil {
			return o, err
		}
		o.Admission.Keys = kf
	}
	if g.jwt.JWKS != "" || g.jwt.Issuer != "" || g.jwt.Audience != "" {
		jo := g.jwt
		jo.Logger = log
		v, err := admit.NewVerifier(jo)
		if err != nil {
			return o, err
		}
		o.Admission.JWT = v
	}
	return o, nil
}

// workerFlags are a worker group's settings.
type workerFlags struct {
	tracing     *tracing.Provider // set by the command, from traceFlags
	concurrency int
	maxAge      time.Duration
	maxFuture   time.Duration
	maxPrice    float64
	maxSize     int64
	priceBand   float64
	stageCost   time.Duration
	stageDelay  time.Duration
	// Durable delivery: delivery and the streams' replicas, duplicate
	// window and ingest bound are registered by sluice worker alone
	// (registerDurable); sluice dev takes the gateway's.
	delivery   bus.Modes
	ackWait    time.Duration
	maxDeliver int
	streams    bus.StreamOptions
}

// registerDurable registers the durable delivery flags that sluice worker
// has and sluice dev takes from the gateway's flags of the same names.
func (w *workerFlags) registerDurable(fs *flag.FlagSet) {
	registerDelivery(fs, &w.delivery)
	registerStreamFlags(fs, &w.streams, false)
}

// registerStreamFlags registers the streams' limits: those sluice worker
// and sluice streams apply share, and with enriched the enriched stream's.
// Each defaults to 0, "keep": an existing stream keeps its value and a new
// one gets the default, so that only a setting an operator gives changes a
// stream, whichever component starts last.
func registerStreamFlags(fs *flag.FlagSet, o *bus.StreamOptions, enriched bool) {
	fs.IntVar(&o.Replicas, "replicas", 0, replicasUsage)
	fs.DurationVar(&o.Duplicates, "duplicates", 0, duplicatesUsage)
	fs.Int64Var(&o.IngestMaxBytes, "ingest-max-bytes", 0, ingestMaxBytesUsage)
	fs.IntVar(&o.Partitions, "partitions", bus.DefaultPartitions, partitionsUsage)
	if enriched {
		registerEnrichedFlags(fs, o)
	}
}

// The help of the stream settings every durable component takes.
const (
	keepUsage           = "; 0 (the default) keeps an existing stream's value, and a new stream gets "
	replicasUsage       = "durable delivery: replicas of each stream (3 on a cluster that must survive the loss of a node)" + keepUsage + "1"
	duplicatesUsage     = "durable delivery: the streams' duplicate window: a batch, enriched event or dead letter published again with the same Nats-Msg-Id within it is stored once" + keepUsage + "2m"
	ingestMaxBytesUsage = "durable delivery: bytes of batches the ingest stream holds unprocessed; past it the stream refuses new batches (and requests get 503); -1 for no bound" + keepUsage + "1 GiB"
	partitionsUsage     = "durable delivery: partitions of each durable type's batches, by symbol: each is processed one batch at a time by one worker of a group, so a symbol's events are processed in ingest order (1: one unordered consumer per group, as before partitions). Fixed for the life of the ingest stream: every gateway and worker must give the same count (a stream with another one fails start naming both), and only sluice streams apply changes it"
)

// registerEnrichedFlags registers the enriched stream's limits, 0 meaning
// keep as in [registerStreamFlags].
func registerEnrichedFlags(fs *flag.FlagSet, o *bus.StreamOptions) {
	fs.DurationVar(&o.EnrichedMaxAge, "enriched-max-age", 0, "durable delivery: enriched events older than this are dropped from the enriched stream (replay reaches this far back)"+keepUsage+"24h")
	fs.Int64Var(&o.EnrichedMaxBytes, "enriched-max-bytes", 0, "durable delivery: past this many bytes the enriched stream drops its oldest events; -1 for no bound"+keepUsage+"1 GiB")
}

func (w *workerFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&w.concurrency, "concurrency", 0, "batches processed at once by one worker (default GOMAXPROCS: 1 for sluice worker at its default --procs; at least --partitions in durable delivery, so that the partitions' batches wait for their stores at once)")
	fs.DurationVar(&w.maxAge, "max-age", schemas.DefaultMaxAge, "events whose ts is older are rejected as stale")
	fs.DurationVar(&w.maxFuture, "max-future", schemas.DefaultMaxFuture, "events whose ts is further ahead are rejected as future_timestamp")
	fs.Float64Var(&w.maxPrice, "max-price", schemas.DefaultMaxPrice, "a bid, ask or price above this, in any currency, is rejected as out_of_range")
	fs.Int64Var(&w.maxSize, "max-size", schemas.DefaultMaxSize, "a size above this is rejected as out_of_range (at most 2^53-1, what a float64 holds exactly)")
	fs.Float64Var(&w.priceBand, "price-band", enrich.DefaultPriceBand, "a price further than this fraction from its symbol's last enriched price is rejected as price_out_of_band (0.5: below half or above 1.5 times it; after 3 in a row the next is the new level); 0 disables")
	fs.DurationVar(&w.stageCost, "stage-cost", 0, "TEST KNOB: burn this much CPU per event to make workers slow on purpose (capacity and shedding tests)")
	fs.DurationVar(&w.stageDelay, "stage-delay", 0, "TEST KNOB: a downstream taking this long per event, one at a time, without CPU: caps a worker at 1/DURATION events/s (capacity tests on a shared machine)")
	fs.DurationVar(&w.ackWait, "ack-wait", 0, "durable delivery: a batch not acknowledged within this is delivered again (to any worker of the group); a batch still running at half of it is kept with an in-progress ack. With --partitions above 1 a partition whose batch a dead worker held (kill -9, lost connection) stalls this long (default 30s, 5s with --partitions above 1)")
	fs.IntVar(&w.maxDeliver, "max-deliver", bus.DefaultMaxDeliver, "durable delivery: deliveries of a batch; one that still fails on the last goes whole to <prefix>.dlq.<type> with its reason and count")
	registerEnrichedFlags(fs, &w.streams)
}

func (w *workerFlags) apply(o *workers.Options) {
	o.Tracing = w.tracing
	o.Concurrency = w.concurrency
	o.Limits = schemas.Limits{MaxAge: w.maxAge, MaxFuture: w.maxFuture, MaxPrice: w.maxPrice, MaxSize: w.maxSize}
	o.StageCost = w.stageCost
	o.StageDelay = w.stageDelay
	o.Delivery = w.delivery
	o.AckWait = w.ackWait
	o.MaxDeliver = w.maxDeliver
	o.Streams = w.streams
}

// negatedBool is a boolean flag stored negated, so that an option whose
// zero value means "on" can be a flag that defaults to true.
type negatedBool struct{ off *bool }

func (b negatedBool) String() string {
	if b.off == nil {
		return "true"
	}
	return strconv.FormatBool(!*b.off)
}

func (b negatedBool) Set(v string) error {
	on, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	*b.off = !on
	return nil
}

// IsBoolFlag lets the flag be given without a value.
func (b negatedBool) IsBoolFlag() bool { return true }

// registerTraceFlags registers the tracing flags into o (see package
// ops/tracing); tracing stays off without an endpoint.
func registerTraceFlags(fs *flag.FlagSet, o *tracing.Options) {
	fs.StringVar(&o.Endpoint, "otlp-endpoint", "", "OpenTelemetry: the OTLP/HTTP collector to send spans to (http://host:4318; spans go to its /v1/traces). Empty: OTEL_EXPORTER_OTLP_ENDPOINT decides, and without it tracing is off, at no cost")
	fs.Float64Var(&o.SampleRatio, "trace-sample", 1, "OpenTelemetry: fraction of requests without a sampled traceparent that are traced, 0 to 1 (a request whose traceparent is sampled is always traced); lower it at high rates: a traced request costs spans on the gateway and the worker")
}

// startTracing starts the tracer provider of o for the process named
// service, or returns nil when tracing is off.
func startTracing(ctx context.Context, o tracing.Options, service string, log *slog.Logger) (*tracing.Provider, error) {
	o.ServiceName = service
	p, err := tracing.New(ctx, o)
	if err != nil {
		return nil, err
	}
	if p != nil {
		log.Info("tracing on", "endpoint", o.Endpoint, "sample", o.SampleRatio)
	}
	return p, nil
}
