package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

func runWorker(args []string) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var c commonFlags
	var w workerFlags
	c.register(fs, true)
	w.register(fs)
	group := fs.String("group", "", "worker group: quotes or trades; every worker of a group shares its work through a NATS queue group")
	opsAddr := fs.String("ops-listen", "127.0.0.1:9091", "ops listener: /metrics, /healthz, /readyz, /debug/pprof/")
	if ok, code := parse(fs, "worker", "A worker of one group: validates and enriches events, publishes them, answers waiting requests.", args); !ok {
		return code
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
	nc, err := connectNATS(c.nats, "sluice-worker-"+*group, log)
	if err != nil {
		return fatal(log, "worker", err)
	}
	defer nc.Close()
	set := metrics.NewSet()
	wk, watcher, err := startWorker(ctx, nc, subjects, *group, &w, log, set)
	if err != nil {
		return fatal(log, "worker", err)
	}
	defer func() { _ = watcher.Stop() }()
	opsSrv, err := startOps(*opsAddr, log, nc, set)
	if err != nil {
		return fatal(log, "worker", err)
	}
	log.Info("worker running", "ops", opsSrv.Addr(), "nats", c.nats, "prefix", subjects.Prefix())
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
	o := workers.Options{Conn: nc, Group: group, Subjects: subjects, Enricher: &enrich.Enricher{Store: store},
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
