package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/ops"
	"github.com/sluice-dev/sluice/ops/tracing"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

func runDev(args []string) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var c commonFlags
	var cfg devConfig
	c.register(fs, false)
	cfg.gateway.register(fs)
	cfg.worker.register(fs)
	registerTraceFlags(fs, &cfg.trace)
	fs.StringVar(&cfg.opsAddr, "ops-listen", ops.DefaultOpsAddr, "ops listener: /metrics, /healthz, /readyz, /debug/pprof/, and the live dashboard at /")
	registerDashboardFlag(fs, &cfg.dashboardClients)
	fs.StringVar(&cfg.natsListen, "nats-listen", "127.0.0.1:4222", "embedded NATS server address (port 0 picks a free one)")
	fs.StringVar(&cfg.dataDir, "data", "", "JetStream store folder, kept across runs (default: a temporary folder, removed at exit, or by the next sluice dev after a kill -9)")
	refdata := fs.String("refdata", "", "reference data file to load (default: the built-in sample data)")
	if ok, code := parse(fs, "dev", "One process with an embedded NATS server, the sample reference data, the gateway and one worker per default group.", args); !ok {
		return code
	}
	log, err := c.logger()
	if err != nil {
		fs.Usage()
		return 2
	}
	if cfg.subjects, err = schemas.NewSubjects(c.prefix); err != nil {
		return fatal(log, "bad --prefix", err)
	}
	cfg.refdata = enrich.Sample()
	if *refdata != "" {
		if cfg.refdata, err = enrich.LoadFile(*refdata); err != nil {
			return fatal(log, "loading reference data", err)
		}
	}
	ctx, stop := signalContext()
	defer stop()
	st, err := startStack(ctx, cfg, log)
	if err != nil {
		return fatal(log, "sluice dev", err)
	}
	printBanner(st.gw.Addr(), st.ops.Addr(), st.nats.ClientURL(), cfg.subjects)
	code := 0
	select {
	case <-ctx.Done():
	case err := <-st.gw.Err():
		log.Error("data listener stopped", "err", err)
		code = 1
	}
	log.Info("draining: finishing in-flight requests, then workers, then NATS")
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := st.shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return code
}

// devConfig is what `sluice dev` starts.
type devConfig struct {
	gateway gatewayFlags
	worker  workerFlags
	opsAddr string
	// dashboardClients bounds the ops listener's open dashboard pages.
	dashboardClients int
	natsListen       string
	dataDir          string
	subjects         schemas.Subjects
	refdata          *enrich.RefData
	groups           []string // default quotes, trades
	trace            tracing.Options
}

// devStack is a running `sluice dev`: embedded NATS, a worker per group, the
// gateway and the ops listener.
type devStack struct {
	nats     *server.Server
	tmpDir   string
	conns    []*nats.Conn
	watchers []*enrich.Watcher
	workers  []*workers.Worker
	gw       *gateway.Server
	hub      *stream.Hub
	ops      *ops.Server
	metrics  *metrics.Set
	tracing  *tracing.Provider
}

// startStack starts everything of cfg; on error it stops what it started.
func startStack(ctx context.Context, cfg devConfig, log *slog.Logger) (st *devStack, err error) {
	st = &devStack{metrics: metrics.NewSet()}
	defer func() {
		if err != nil {
			_ = st.shutdown(context.Background())
		}
	}()
	host, portStr, err := net.SplitHostPort(cfg.natsListen)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil {
		return nil, fmt.Errorf("--nats-listen %q is not host:port", cfg.natsListen)
	}
	if port == 0 {
		port = -1
	}
	store := cfg.dataDir
	if store == "" {
		if st.tmpDir, err = makeDevStore(log); err != nil {
			return st, err
		}
		store = st.tmpDir
	}
	st.nats, err = ops.RunNATS(ops.NATSOptions{Host: host, Port: port, JetStream: true, StoreDir: store,
		ServerName: "sluice-dev", Logger: log, QuietNotices: true})
	if err != nil {
		return st, fmt.Errorf("starting embedded NATS: %w", err)
	}
	url := st.nats.ClientURL()
	rnc, err := nats.Connect(url, nats.Name("sluice-refdata"))
	if err != nil {
		return st, fmt.Errorf("connecting to the embedded NATS: %w", err)
	}
	err = uploadRefdata(ctx, rnc, cfg.subjects, cfg.refdata, 1, log)
	rnc.Close()
	if err != nil {
		return st, fmt.Errorf("loading reference data: %w", err)
	}
	groups := cfg.groups
	if len(groups) == 0 {
		groups = []string{"quotes", "trades"}
	}
	// The workers take the delivery modes and the streams' shared limits
	// from the gateway's flags of the same names (sluice dev registers
	// them once).
	if st.tracing, err = startTracing(ctx, cfg.trace, "sluice-dev", log); err != nil {
		return st, err
	}
	wf := cfg.worker
	wf.tracing = st.tracing
	gs := cfg.gateway.opts.Durable.Streams
	wf.delivery = cfg.gateway.opts.Delivery
	wf.streams.Replicas, wf.streams.Duplicates, wf.streams.IngestMaxBytes = gs.Replicas, gs.Duplicates, gs.IngestMaxBytes
	wf.streams.Partitions = gs.Partitions
	for _, group := range groups {
		nc, err := st.connect(url, "sluice-dev-worker-"+group, log)
		if err != nil {
			return st, err
		}
		wk, watcher, err := startWorker(ctx, nc, cfg.subjects, group, &wf, log.With("group", group), st.metrics)
		if err != nil {
			return st, fmt.Errorf("starting worker %s: %w", group, err)
		}
		st.watchers = append(st.watchers, watcher)
		st.workers = append(st.workers, wk)
	}
	gnc, err := st.connect(url, "sluice-dev-gateway", log)
	if err != nil {
		return st, err
	}
	o, err := cfg.gateway.build(log)
	if err != nil {
		return st, err
	}
	o.Conn, o.Subjects, o.Logger, o.Metrics = gnc, cfg.subjects, log, st.metrics
	o.Tracing = st.tracing
	if st.hub, err = cfg.gateway.attachStreams(&o); err != nil {
		return st, err
	}
	if st.gw, err = gateway.New(o); err != nil {
		return st, err
	}
	if err := st.gw.Start(); err != nil {
		return st, err
	}
	if st.ops, err = startOps(cfg.opsAddr, cfg.dashboardClients, log, gnc, st.metrics); err != nil {
		return st, err
	}
	addGroupChecks(st.ops, st.gw)
	addIngestCheck(st.ops, st.gw, o.Delivery)
	if o.Delivery.Any(bus.ModeDurable) {
		for i, wk := range st.workers {
			addStreamsCheck(st.ops, "streams:"+groups[i], wk)
		}
	}
	return st, waitWorkers(ctx, st.gw, len(groups))
}

// waitWorkers waits until the gateway has heard a load report from a worker
// of every group, so the first request after start-up is not refused.
func waitWorkers(ctx context.Context, gw *gateway.Server, groups int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		live := 0
		for _, n := range gw.GroupWorkers() {
			if n > 0 {
				live++
			}
		}
		if live >= groups {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the workers' first load reports: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func (st *devStack) connect(url, name string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := connectNATS(url, name, log)
	if err != nil {
		return nil, err
	}
	st.conns = append(st.conns, nc)
	return nc, nil
}

// shutdown drains in order: the gateway (in-flight requests finish), the
// workers (received batches finish), the reference data watchers, the
// connections, then the NATS server.
func (st *devStack) shutdown(ctx context.Context) error {
	var errs []error
	if st.gw != nil {
		errs = append(errs, st.gw.Shutdown(ctx))
	}
	if st.hub != nil {
		errs = append(errs, st.hub.Shutdown(ctx))
	}
	for _, wk := range st.workers {
		errs = append(errs, wk.Shutdown(ctx))
	}
	for _, w := range st.watchers {
		_ = w.Stop()
	}
	if st.ops != nil {
		errs = append(errs, st.ops.Shutdown(ctx))
	}
	errs = append(errs, st.tracing.Shutdown(ctx)) // the spans still held are exported
	for _, nc := range st.conns {
		nc.Close()
	}
	if st.nats != nil {
		st.nats.Shutdown()
		st.nats.WaitForShutdown()
	}
	if st.tmpDir != "" {
		_ = os.RemoveAll(st.tmpDir)
	}
	return errors.Join(errs...)
}

func uploadRefdata(ctx context.Context, nc *nats.Conn, subjects schemas.Subjects, rd *enrich.RefData, replicas int, log *slog.Logger) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	bucket := enrich.BucketName(subjects.Prefix())
	n, err := enrich.UploadReplicated(ctx, js, bucket, rd, replicas)
	if err != nil {
		return err
	}
	log.Info("reference data loaded", "bucket", bucket, "keys", n)
	return nil
}

func printBanner(data, opsAddr, natsURL string, subjects schemas.Subjects) {
	fmt.Printf(`
sluice dev is running
  data API   http://%[1]s   (HTTP/1.1 and h2c)
  ops        http://%[2]s/   (live dashboard; /metrics  /healthz  /readyz  /debug/pprof/)
  NATS       %[3]s   (enriched events on %[4]s)
  streams    http://%[1]s/v1/streams/quote?symbols=*   (SSE, NDJSON, WebSocket; live board at http://%[1]s/ui/)

Try:
  curl -s -H 'Prefer: return=representation' -H 'Content-Type: application/json' \
    -d '{"symbol":"AAPL","bid":189.52,"ask":189.55,"bid_size":300,"ask_size":200,"venue":"XNAS"}' \
    http://%[1]s/v1/events/quote
  curl -N -H 'Accept: text/event-stream' 'http://%[1]s/v1/streams/quote?symbols=AAPL'

Ctrl-C drains in-flight work and exits.
`, data, opsAddr, natsURL, subjects.EnrichedAll())
}
