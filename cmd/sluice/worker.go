package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops"
	"github.com/sluice-dev/sluice/ops/tracing"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

func runWorker(args []string) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var c commonFlags
	var w workerFlags
	c.register(fs, true)
	w.register(fs)
	w.registerDurable(fs)
	group := fs.String("group", "", "worker group: quotes or trades; every worker of a group shares its work through a NATS queue group")
	opsAddr := fs.String("ops-listen", "127.0.0.1:9091", "ops listener: /metrics, /healthz, /readyz, /debug/pprof/, and the live dashboard at /")
	var dashClients int
	registerDashboardFlag(fs, &dashClients)
	var traceOpts tracing.Options
	registerTraceFlags(fs, &traceOpts)
	procs := fs.Int("procs", 1, "CPUs the worker's Go runtime schedules on (GOMAXPROCS; also the default --concurrency): one keeps hand-offs between goroutines on one thread, which costs a worker far less CPU per event; scale a group with more workers, or 0 for Go's default (all CPUs). A valid GOMAXPROCS variable is kept unless --procs or SLUICE_PROCS is set")
	if ok, code := parse(fs, "worker", "A worker of one group: validates and enriches events, publishes them, answers waiting requests.", args); !ok {
		return code
	}
	if *procs < 0 {
		fmt.Fprintf(fs.Output(), "sluice worker: --procs (SLUICE_PROCS) %d: want 0 (Go's default) or more\n", *procs)
		return 2
	}
	procsSet := false
	fs.Visit(func(f *flag.Flag) { procsSet = procsSet || f.Name == "procs" })
	if n := workerProcs(*procs, procsSet, os.Getenv("GOMAXPROCS")); n > 0 {
		runtime.GOMAXPROCS(n)
	}
	log, err := c.logger()
	if err != nil {
		fs.Usage()
		return 2
	}
	if *group == "" {
		fmt.Fprintln(fs.Output(), "sluice worker: --group is required (quotes or trades)")
		return 2
	}
	subjects, err := schemas.NewSubjects(c.prefix)
	if err != nil {
		return fatal(log, "bad --prefix", err)
	}
	log = log.With("group", *group)
	ctx, stop := signalContext()
	defer stop()
	nc, err := c.connect("sluice-worker-"+*group, log)
	if err != nil {
		return fatal(log, "worker", err)
	}
	defer nc.Close()
	set := metrics.NewSet()
	if w.tracing, err = startTracing(ctx, traceOpts, "sluice-worker-"+*group, log); err != nil {
		return fatal(log, "worker", err)
	}
	defer func() { _ = w.tracing.Shutdown(context.Background()) }()
	wk, watcher, err := startWorker(ctx, nc, subjects, *group, &w, log, set)
	if err != nil {
		return fatal(log, "worker", err)
	}
	defer func() { _ = watcher.Stop() }()
	opsSrv, err := startOps(*opsAddr, dashClients, log, nc, set)
	if err != nil {
		return fatal(log, "worker", err)
	}
	if w.delivery.Any(bus.ModeDurable) {
		addStreamsCheck(opsSrv, "streams", wk)
	}
	log.Info("worker running", "ops", opsSrv.Addr(), "nats", c.nats, "prefix", subjects.Prefix(), "procs", runtime.GOMAXPROCS(0))
	<-ctx.Done()
	log.Info("draining")
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	code := 0
	if err := wk.Shutdown(sctx); err != nil {
		log.Error("worker shutdown", "err", err)
		code = 1
	}
	_ = opsSrv.Shutdown(sctx)
	return code
}

// addStreamsCheck adds the /readyz line name: whether the streams of the
// worker's durable kinds are usable (see [workers.Worker.CheckStreams]).
func addStreamsCheck(srv *ops.Server, name string, wk *workers.Worker) {
	srv.AddReady(name, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		return wk.CheckStreams(ctx)
	})
}

// readyTimeout bounds a readiness check that asks the NATS server.
const readyTimeout = 2 * time.Second

// workerProcs is the GOMAXPROCS a worker sets, 0 for none: --procs (or
// SLUICE_PROCS) when given, 0 meaning Go's default; else its default of 1,
// unless the GOMAXPROCS variable holds a valid setting of its own (the
// runtime ignores an invalid one, and so does this).
func workerProcs(flagValue int, flagSet bool, envGOMAXPROCS string) int {
	if n, err := strconv.Atoi(envGOMAXPROCS); !flagSet && err == nil && n > 0 {
		return 0
	}
	return flagValue
}

// startWorker loads the reference data from the KV bucket (and keeps
// watching it) and starts a worker of group.
func startWorker(ctx context.Context, nc *nats.Conn, subjects schemas.Subjects, group string, w *workerFlags,
	log *slog.Logger, set *metrics.Set) (*workers.Worker, *enrich.Watcher, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	store := enrich.NewStore()
	watcher, err := enrich.Watch(ctx, js, enrich.BucketName(subjects.Prefix()), store, log)
	if err != nil {
		return nil, nil, err
	}
	o := workers.Options{Conn: nc, Group: group, Subjects: subjects, Enricher: &enrich.Enricher{Store: store, PriceBand: w.priceBand},
		Logger: log, Metrics: set}
	w.apply(&o)
	wk, err := workers.New(o)
	if err != nil {
		_ = watcher.Stop()
		return nil, nil, err
	}
	if err := wk.Start(); err != nil {
		_ = watcher.Stop()
		return nil, nil, err
	}
	n, _ := store.Len()
	log.Info("reference data loaded", "instruments", n)
	return wk, watcher, nil
}
