package main

import (
	"context"
	"flag"
	"os"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/ops"
	"github.com/sluice-dev/sluice/ops/tracing"
	"github.com/sluice-dev/sluice/schemas"
)

func runGateway(args []string) int {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	var c commonFlags
	var g gatewayFlags
	c.register(fs, true)
	g.register(fs)
	opsAddr := fs.String("ops-listen", ops.DefaultOpsAddr, "ops listener: /metrics, /healthz, /readyz, /debug/pprof/, and the live dashboard at /")
	var dashClients int
	registerDashboardFlag(fs, &dashClients)
	var traceOpts tracing.Options
	registerTraceFlags(fs, &traceOpts)
	if ok, code := parse(fs, "gateway", "The HTTP edge: decodes requests into MessagePack CloudEvents and micro-batches them onto NATS.", args); !ok {
		return code
	}
	log, err := c.logger()
	if err != nil {
		fs.Usage()
		return 2
	}
	subjects, err := schemas.NewSubjects(c.prefix)
	if err != nil {
		return fatal(log, "bad --prefix", err)
	}
	ctx, stop := signalContext()
	defer stop()
	nc, err := c.connect("sluice-gateway", log)
	if err != nil {
		return fatal(log, "gateway", err)
	}
	defer nc.Close()
	set := metrics.NewSet()
	o, err := g.build(log)
	if err != nil {
		return fatal(log, "gateway", err)
	}
	o.Conn, o.Subjects, o.Logger, o.Metrics = nc, subjects, log, set
	if o.Tracing, err = startTracing(ctx, traceOpts, "sluice-gateway", log); err != nil {
		return fatal(log, "gateway", err)
	}
	defer func() { _ = o.Tracing.Shutdown(context.Background()) }()
	hub, err := g.attachStreams(&o)
	if err != nil {
		return fatal(log, "gateway", err)
	}
	gw, err := gateway.New(o)
	if err != nil {
		return fatal(log, "gateway", err)
	}
	if err := gw.Start(); err != nil {
		return fatal(log, "gateway", err)
	}
	opsSrv, err := startOps(*opsAddr, dashClients, log, nc, set)
	if err == nil {
		addGroupChecks(opsSrv, gw)
		addIngestCheck(opsSrv, gw, o.Delivery)
	}
	if err != nil {
		return fatal(log, "gateway", err)
	}
	log.Info("gateway listening", "data", gw.Addr(), "ops", opsSrv.Addr(), "nats", c.nats, "prefix", subjects.Prefix())
	code := 0
	select {
	case <-ctx.Done():
	case err := <-gw.Err():
		log.Error("data listener stopped", "err", err)
		code = 1
	}
	log.Info("draining")
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := gw.Shutdown(sctx); err != nil {
		log.Error("gateway shutdown", "err", err)
		code = 1
	}
	if hub != nil {
		if err := hub.Shutdown(sctx); err != nil {
			log.Error("streams shutdown", "err", err)
			code = 1
		}
	}
	_ = opsSrv.Shutdown(sctx)
	_ = os.Stderr.Sync()
	return code
}
