package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway/h2edge"
	"github.com/sluice-dev/sluice/gateway/netconn"
	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/schemas"
)

// Server is the data listener: the HTTP API of sluice.
type Server struct {
	opts     Options
	log      *slog.Logger
	m        *gatewayMetrics
	ids      *idGen
	replies  *replyTable
	batchers [3]*batcher         // by schemas.Kind
	parts    [3]*partitioned     // by schemas.Kind: a partitioned durable type's batchers (batchers holds the first)
	dur      *durablePub         // the durable types' publisher; nil when all are core
	js       jetstream.JetStream // durable: set by Start, for CheckIngest
	adm      *admission
	body     bodyReader
	inbox    string
	sub      *nats.Subscription
	srv      *http.Server
	ln       *netconn.Listener
	serveErr chan error
	started  atomic.Bool
	once     sync.Once
	// spanNames are the request spans' names, by kind.
	spanNames [3]string
}

// ErrStarted is returned by [Server.Start] on a Server that was started
// before: a Server serves once; build another with [New].
var ErrStarted = errors.New("gateway: already started")

// New builds a Server from opts; it does not listen yet.
func New(opts Options) (*Server, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger, m: newGatewayMetrics(opts.Metrics), ids: newIDGen(),
		serveErr: make(chan error, 1),
		body:     bodyReader{max: opts.MaxBodyBytes, timeout: opts.BodyTimeout, minRate: opts.BodyMinRate}}
	s.replies = newReplyTable(opts.MaxWaiting, s.m)
	s.inbox = opts.Conn.NewInbox()
	opts.Admission.log = opts.Logger
	s.adm = newAdmission(opts.Admission, opts.Subjects, opts.Metrics)
	if opts.Delivery.Any(bus.ModeDurable) {
		d, err := newDurablePub(opts.Conn, opts.Durable, opts.Metrics)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		s.dur = d
	}
	for _, k := range schemas.Kinds {
		s.spanNames[k] = "POST /v1/events/" + k.String()
		// Every batch carries a reply subject naming its kind, so the
		// NATS server's no-responders notice tells which group is gone.
		durable := opts.Delivery.Of(k) == bus.ModeDurable
		var pub framePublisher = corePub{nc: opts.Conn}
		if durable {
			pub = s.dur
		}
		subject, partitions := opts.Subjects.Ingest(k), 1
		if durable {
			if partitions = max(opts.Durable.Streams.Partitions, 1); partitions > 1 {
				subject = opts.Subjects.IngestPartition(k, 0)
			}
		}
		b := newBatcher(pub, subject, s.inbox+"."+k.String(), opts.Batch, s.m)
		b.group = s.adm.groups[k].load
		if opts.Tracing != nil {
			b.tracer, b.spanName = opts.Tracing.Tracer(), "publish "+b.subject
		}
		if durable {
			// A group that serves a durable type is counted as durable
			// (its backlog is in the stream), also for a core type it
			// serves too.
			b.dur, b.msgID = s.dur, s.dur.id+"."+k.String()+"."
			b.group.SetDurable()
			b.group.AddOrigin(b.inbox, b.unacked.Load)
			if partitions > 1 {
				s.parts[k] = newPartitioned(b, opts.Subjects, k, partitions, b.msgID)
			}
		} else {
			b.group.AddOrigin(b.inbox, b.out.events.Load)
		}
		s.batchers[k] = b
	}
	opts.Metrics.NewGauge(`sluice_gateway_waiting_requests`, func() float64 {
		return float64(len(s.replies.slots) - len(s.replies.free))
	})
	opts.Metrics.NewGauge(`sluice_gateway_batches_lost_total`, func() float64 {
		var n uint64
		for _, k := range schemas.Kinds {
			n += s.batchers[k].out.lost()
		}
		return float64(n)
	})
	opts.Metrics.NewGauge(`sluice_gateway_batcher_pending_bytes`, func() float64 {
		var n int64
		for _, k := range schemas.Kinds {
			n += s.batchers[k].pending.Load()
		}
		return float64(n)
	})
	s.srv = s.newHTTPServer()
	if c, ok := opts.Streams.(interface{ Close() }); ok {
		s.srv.RegisterOnShutdown(c.Close)
	}
	return s, nil
}

func (s *Server) newHTTPServer() *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	if s.tls() {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	h2e := newH2Errors(s.opts.Metrics)
	h := s.routes()
	if s.opts.HTTP2Server == HTTP2Std {
		h = s.refuseStrayProtocol(h)
	}
	srv := &http.Server{
		Handler:           h,
		Protocols:         &p,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		// Headers plus body: a stalled upload is cut here (HTTP/2: the
		// stream's body fails, HTTP/1.1: the connection's read).
		ReadTimeout:    s.opts.ReadHeaderTimeout + s.opts.BodyTimeout,
		WriteTimeout:   s.writeTimeout(),
		IdleTimeout:    s.opts.IdleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: s.opts.MaxConcurrentStreams,
			CountError:           h2e.count,
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.opts.Streams != nil {
		// The subscribers' hub bounds the unsent bytes of an HTTP/1.1
		// stream's connection (stream.Options.NotSentLowat).
		srv.ConnContext = stream.WithConn
	}
	if s.opts.HTTP2Server != HTTP2Std {
		s.fastEdge(srv, h2e)
	}
	return srv
}

// refuseStrayProtocol answers 400 a request that carries :protocol without
// being a CONNECT. net/http's HTTP/2 server, once extended CONNECT is on
// (internal/xconnect), hands such a request to its handler, where RFC 8441
// (4) makes it malformed; the fast edge resets its stream itself.
func (s *Server) refuseStrayProtocol(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header[":protocol"]; ok && r.Method != http.MethodConnect {
			st := getState()
			defer putState(st)
			s.fail(w, st, &problem{Status: http.StatusBadRequest,
				Detail: "the :protocol pseudo-header belongs to an extended CONNECT (RFC 8441), not to " + r.Method})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fastEdge hands srv's HTTP/2 connections to gateway/h2edge, with srv's
// handler and bounds.
func (s *Server) fastEdge(srv *http.Server, h2e *h2Errors) {
	flood := s.opts.Metrics.GetOrCreateCounter(h2FloodMetric)
	h2edge.New(h2edge.Options{
		Fast:                 fastEvents{s},
		MaxConcurrentStreams: uint32(s.opts.MaxConcurrentStreams),
		MaxHeaderListSize:    maxHeaderBytes,
		ReadHeaderTimeout:    s.opts.ReadHeaderTimeout,
		IdleTimeout:          s.opts.IdleTimeout,
		ReadTimeout:          srv.ReadTimeout,
		WriteTimeout:         srv.WriteTimeout,
		ControlFrameLimit:    netconn.DefaultControlFrameLimit,
		// Subscriber streams take WebSockets over HTTP/2 (RFC 8441), as
		// net/http's server does with internal/xconnect.
		EnableConnectProtocol: true,
		OnError: func(reason string) {
			if reason == "control_flood" {
				flood.Inc()
				return
			}
			h2e.count(reason)
		},
		Logger: s.log,
	}).ConfigureServer(srv)
}

// maxHeaderBytes bounds a request's header block (431 past it).
const maxHeaderBytes = 64 << 10

// writeGrace is what writeTimeout leaves for writing an answer once the
// longest request allowed has been read and answered.
const writeGrace = 10 * time.Second

// writeTimeout bounds a whole exchange, from the end of its headers to the
// last byte of its answer (HTTP/1.1: the connection's writes; HTTP/2: the
// stream, which is then reset): the longest body read allowed (its timeout
// plus the time a maximal body earns at the minimum rate), the longest
// wait for a result, and writeGrace. A peer that never opens its
// flow-control window holds a stream until then, not for as long as it
// keeps the connection.
func (s *Server) writeTimeout() time.Duration {
	d := s.opts.ReadHeaderTimeout + s.opts.BodyTimeout + s.opts.RequestTimeout + writeGrace
	if s.opts.BodyMinRate > 0 {
		d += time.Duration(s.opts.MaxBodyBytes/s.opts.BodyMinRate+1) * time.Second
	}
	return d
}

func (s *Server) tls() bool { return s.opts.TLSCert != "" }

// routes builds the data listener's mux.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events/{type}", s.handleEvents)
	mux.HandleFunc("/v1/events/{type}", s.methodNotAllowed("POST"))
	mux.HandleFunc("GET /v1/types", s.handleTypes)
	mux.HandleFunc("/v1/types", s.methodNotAllowed("GET"))
	if s.opts.Streams != nil {
		mux.Handle("/v1/streams/{type}", s.streamsAuth(s.opts.Streams))
		if p, ok := s.opts.Streams.(interface{ Page() http.Handler }); ok {
			mux.Handle("GET /ui/", p.Page())
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		st := getState()
		defer putState(st)
		s.fail(w, st, &problem{Status: http.StatusNotFound,
			Detail: fmt.Sprintf("no route %s %s: the API is POST /v1/events/{type} and GET /v1/types", r.Method, r.URL.Path)})
	})
	return mux
}

func (s *Server) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := getState()
		defer putState(st)
		w.Header().Set("Allow", allow)
		s.fail(w, st, &problem{Status: http.StatusMethodNotAllowed, Detail: fmt.Sprintf("use %s", allow)})
	}
}

// Start subscribes to the gateway's reply inbox, listens and serves in the
// background; it does not block. Addr reports the bound address, and Err
// reports a listener that stops serving by itself. A Server starts once: a
// second call returns [ErrStarted], also after a failed first one (the
// failed Start undid what it had set up; Shutdown then succeeds).
func (s *Server) Start() error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	if err := s.applyIngest(); err != nil {
		return err
	}
	sub, err := s.opts.Conn.Subscribe(s.inbox+".*", s.onReply)
	if err != nil {
		return fmt.Errorf("subscribing to the reply inbox: %w", err)
	}
	// Replies must not be dropped by the client's default pending limits
	// before the table sees them; the table itself is bounded.
	if err := sub.SetPendingLimits(1<<20, 512<<20); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("setting reply inbox limits: %w", err)
	}
	if !s.opts.Admission.Disabled {
		for k, b := range s.batchers {
			if b == nil || b.dur != nil { // durable batches are not in the ring
				continue
			}
			delay := s.opts.Admission.Shed.MaxQueueDelay
			if d, ok := s.opts.Admission.QueueDelays[schemas.Kind(k)]; ok {
				delay = d
			}
			lostAfter := max(batchLostAfter, 8*delay)
			s.adm.onTick = append(s.adm.onTick, func(now time.Time) { b.out.expire(now.Add(-lostAfter).UnixNano()) })
		}
		if err := s.adm.start(s.opts.Conn, s.opts.Subjects); err != nil {
			_ = sub.Unsubscribe()
			return err
		}
	}
	ln, err := netconn.Listen(s.opts.Listen, netconn.Options{ReadBuffer: s.opts.ReadBufferSize,
		CoalesceWrites: !s.opts.NoWriteCoalescing, ControlFrameLimit: netconn.DefaultControlFrameLimit,
		OnControlFlood: s.opts.Metrics.GetOrCreateCounter(h2FloodMetric).Inc,
		// net/http's own answers to unparseable HTTP/1.1 requests (431
		// for huge headers) as problem+json, counted like the others.
		ProblemErrors: true, MaxHeaderBytes: maxHeaderBytes, OnHTTPError: s.m.status},
		s.opts.TLSCert, s.opts.TLSKey)
	if err != nil {
		_ = sub.Unsubscribe()
		s.adm.close()
		return err
	}
	// Shutdown undoes only what a successful Start kept.
	s.sub, s.ln = sub, ln
	go func() {
		err := s.srv.Serve(ln)
		if !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- fmt.Errorf("serving %s: %w", ln.Addr(), err)
		}
	}()
	return nil
}

// applyTimeout bounds creating or updating the ingest stream at Start
// (JetStream may still be electing a leader after a cluster starts).
const applyTimeout = 30 * time.Second

// applyIngest creates or updates the ingest stream when a type is durable:
// a stream that exists with an incompatible config fails Start, naming the
// field ([bus.FieldError]), and so does one that captures a core type's
// subject ([bus.CapturedError]). When every type is core it only checks
// the latter, with one request: a server without JetStream, or one that
// does not answer in time, does not hold a core gateway back.
func (s *Server) applyIngest() error {
	js, err := jetstream.New(s.opts.Conn)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if s.dur == nil {
		ctx, cancel := context.WithTimeout(context.Background(), coreCheckTimeout)
		defer cancel()
		err := bus.CheckCaptured(ctx, js, s.opts.Subjects, s.opts.Delivery, bus.IngestStream(s.opts.Subjects))
		var ce *bus.CapturedError
		if errors.As(err, &ce) {
			return fmt.Errorf("gateway: %w", err)
		}
		if err != nil {
			s.log.Warn("could not check the ingest stream", "err", err)
		}
		return nil
	}
	s.js = js
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	so := s.opts.Durable.Streams
	so.Delivery = s.opts.Delivery
	a, err := bus.ApplyIngest(ctx, js, s.opts.Subjects, so)
	if err != nil {
		return fmt.Errorf("gateway: applying the ingest stream: %w", err)
	}
	s.log.Info("ingest stream applied", "stream", a.Stream, "action", a.Action, "changed", a.Changed, "added", a.Added,
		"durable", strings.Join(kindNames(s.opts.Delivery.Kinds(bus.ModeDurable)), ","))
	return nil
}

// coreCheckTimeout bounds the look a gateway whose types are all core takes
// at the ingest stream.
const coreCheckTimeout = 2 * time.Second

// CheckIngest reports, when a type is durable, whether the ingest stream
// exists and has a leader: without either no batch can be stored, and
// every request of a durable type would get 503 (/readyz). It is nil
// when every type is core.
func (s *Server) CheckIngest() error {
	if s.js == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	name := bus.IngestStream(s.opts.Subjects)
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("ingest stream %s: %w", name, err)
	}
	if c := st.CachedInfo().Cluster; c != nil && c.Leader == "" {
		return fmt.Errorf("ingest stream %s has no leader", name)
	}
	return nil
}

func kindNames(ks []schemas.Kind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.String()
	}
	return out
}

// Err returns a channel that receives the error that made the data
// listener stop serving by itself (its listener failed), once. It receives
// nothing when the listener stops because of Shutdown. The gateway then no
// longer accepts connections: call Shutdown to drain what it holds.
func (s *Server) Err() <-chan error { return s.serveErr }

// batchLostAfter is how long after its publish a core batch that no
// worker has reported done stops counting in its group's depth (at least;
// 8 × its type's --shed-max-queue-delay when that is longer): its worker died holding it,
// or NATS dropped it or the done frame.
const batchLostAfter = 2 * time.Second

// onReply handles a message on the reply inbox: a reply frame from a worker,
// or the NATS server's notice that nobody subscribes to a batch's subject.
func (s *Server) onReply(msg *nats.Msg) {
	if isNoResponders(msg) {
		s.noResponders(msg.Subject)
	}
	if msg.Header.Get(schemas.HeaderFrame) == schemas.FrameDoneV1 {
		s.onDone(msg)
		return
	}
	s.replies.onReply(msg)
}

// onDone handles a worker's done frame: its batches leave the depth this
// gateway counts for their group.
func (s *Server) onDone(msg *nats.Msg) {
	k, ok := schemas.ParseKind(msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:])
	if !ok {
		s.m.replyDecodeErrors.Inc()
		return
	}
	out := &s.batchers[k].out
	if err := schemas.ReadDoneFrame(msg.Data, out.done); err != nil {
		s.m.replyDecodeErrors.Inc()
	}
}

// Addr returns the data listener's address once started.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown drains the gateway: it stops accepting connections and lets
// in-flight requests finish (their batches are published and their results
// awaited, up to ctx), then publishes any batch still filling, unsubscribes
// the reply inbox, flushes the NATS connection and waits until the answers'
// last bytes have left the connections' coalescers. The NATS connection
// itself stays open: it belongs to the caller.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		err = s.srv.Shutdown(ctx)
		for _, k := range schemas.Kinds {
			if p := s.parts[k]; p != nil {
				p.flushAll()
				continue
			}
			s.batchers[k].flushAll()
		}
		if s.dur != nil {
			err = errors.Join(err, s.dur.wait(ctx))
		}
		s.adm.close()
		if s.sub != nil {
			if e := s.sub.Unsubscribe(); e != nil && !errors.Is(e, nats.ErrConnectionClosed) {
				err = errors.Join(err, e)
			}
		}
		if e := s.opts.Conn.FlushWithContext(ctx); e != nil && !errors.Is(e, nats.ErrConnectionClosed) {
			err = errors.Join(err, fmt.Errorf("flushing NATS: %w", e))
		}
		if s.ln != nil {
			err = errors.Join(err, s.ln.Drain(ctx))
		}
	})
	return err
}
