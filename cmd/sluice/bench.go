package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/benchmarks"
	"github.com/sluice-dev/sluice/benchmarks/baseline"
	"github.com/sluice-dev/sluice/benchmarks/loadgen"
	"github.com/sluice-dev/sluice/benchmarks/naive"
	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops"
)

const benchSummary = `Runs the benchmark suite: starts NATS, the gateway, the workers, the baseline servers and the naive
reference pipeline as child processes on loopback, drives them with an open- and closed-loop HTTP/2 load
generator, reads each process's CPU time, and writes RESULTS.md, results.json and sweep.svg (see
benchmarks/README.md). Scenarios: ` + "baseline, naive, publish, request, batch, edge, durable, sweep, overload, fanout, slow-consumer, scale."

// benchFlags are the options of `sluice bench`.
type benchFlags struct {
	o                             benchmarks.Options
	scenarios, proto, out, format string
	jsonOut, workDir, logLevel    string
	overloadRuns                  string
}

func (f *benchFlags) register(fs *flag.FlagSet) {
	o := &f.o
	fs.StringVar(&f.scenarios, "scenario", "all", "scenarios to run, comma separated: "+strings.Join(benchmarks.Scenarios, ", ")+", or all")
	fs.StringVar(&f.out, "out", "benchmarks/RESULTS.md", "markdown report; results.json and sweep.svg are written beside it")
	fs.StringVar(&f.jsonOut, "json", "", "JSON results (default: results.json beside --out)")
	fs.BoolVar(&o.Quick, "quick", false, "smoke test: every run lasts a fraction of a second; no figure means anything")
	fs.DurationVar(&o.Duration, "duration", 0, "measured window of each run (default 5s; 400ms with --quick)")
	fs.DurationVar(&o.Warmup, "warmup", 0, "unmeasured warm-up before each window (default 500ms; 150ms with --quick)")
	fs.IntVar(&o.Rounds, "rounds", 0, "rounds of each scenario, alternating with its baselines (default 2; 1 with --quick)")
	fs.DurationVar(&o.SweepDuration, "sweep-duration", 0, "measured window of each sweep step (default two fifths of --duration)")
	fs.DurationVar(&o.OverloadDuration, "overload-duration", 0, "length of the overload run with slowed workers (default 30s; 800ms with --quick)")
	fs.DurationVar(&o.EdgeOverloadDuration, "edge-overload-duration", 0, "length of the overload run where the gateway's CPU is the bottleneck (default 8s; 400ms with --quick)")
	fs.StringVar(&f.overloadRuns, "overload-runs", "workers,gateway", "the overload's runs, comma separated: workers (slowed workers the bottleneck), gateway (the gateway's CPU), or both")
	fs.DurationVar(&o.OverloadStageDelay, "overload-stage-delay", time.Millisecond, "wait per event of the overload pipeline's slowed quotes worker (its --stage-delay; 0: the default)")
	fs.DurationVar(&o.ScaleStageDelay, "scale-stage-delay", time.Millisecond, "wait per event of the scale scenario's slowed quotes workers (their --stage-delay, with --concurrency 1)")
	fs.IntVar(&o.ScalePartitions, "scale-partitions", 0, "the scale scenario's --partitions for its gateway and workers (0: the commands' default)")
	fs.Float64Var(&o.OverloadFactor, "overload-factor", 3, "overload offered rate as a multiple of the measured capacity")
	fs.IntVar(&o.OverloadStreams, "overload-streams", benchmarks.DefaultOverloadStreams, "requests in flight per connection in the overload runs (past the gateway's --max-streams they wait in the generator)")
	fs.IntVar(&o.WorkerProcs, "worker-procs", 1, "the workers' --procs (GOMAXPROCS); 0 for Go's default")
	fs.IntVar(&o.NATSProcs, "nats-procs", 0, "the NATS server's GOMAXPROCS; 0 for Go's default")
	fs.StringVar(&f.proto, "proto", string(loadgen.ProtoH2C), "protocol: h2c (HTTP/2 prior knowledge), h2 (TLS, self-signed) or h1")
	fs.IntVar(&o.Conns, "conns", loadgen.DefaultConns, "connections")
	fs.IntVar(&o.Streams, "streams", loadgen.DefaultStreams, "requests in flight per connection (HTTP/2 streams)")
	fs.Float64Var(&o.TradeShare, "trade-share", loadgen.DefaultTradeShare, "share of requests carrying trades rather than quotes")
	fs.Float64Var(&o.InvalidShare, "invalid-share", loadgen.DefaultInvalidShare, "share of events that fail validation or enrichment")
	fs.StringVar(&f.format, "format", "json", "body of single-event requests: json, msgpack or ce-binary (CloudEvents binary mode); batches are NDJSON and msgpack")
	fs.StringVar(&o.Priority, "priority", "", "Sluice-Priority header of every request (low, normal, high, critical; default none)")
	fs.IntVar(&o.SampleEvery, "e2e-sample", loadgen.DefaultSampleEvery, "end to end, match the ids of one symbol in N (1: all; costs NATS fan-out)")
	fs.StringVar(&o.H2Load, "h2load", "h2load", "h2load binary that cross-checks every closed-loop throughput row in the same run ("+benchmarks.H2LoadOff+": off; skipped with a note where not found)")
	fs.StringVar(&o.ProfileDir, "profile", "", "folder for CPU profiles of the gateway, the quotes worker and the load generator during the first round of every sluice variant")
	fs.StringVar(&f.workDir, "workdir", "", "folder for the child processes' logs and the NATS store (default: a temporary folder, kept on failure)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level of the suite's own messages")
}

func runBench(args []string) int {
	if len(args) > 0 && (args[0] == "--serve" || args[0] == "-serve") {
		return runBenchServer(args[1:])
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var f benchFlags
	f.register(fs)
	if ok, code := parse(fs, "bench", benchSummary, args); !ok {
		return code
	}
	log, err := ops.NewLogger(os.Stderr, f.logLevel, "text")
	if err != nil {
		fs.Usage()
		return 2
	}
	if err := f.build(args); err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench: %v\n", err)
		return 2
	}
	keep := f.workDir != ""
	if !keep {
		if f.workDir, err = os.MkdirTemp("", "sluice-bench-"); err != nil {
			return fatal(log, "bench", err)
		}
	} else if err := os.MkdirAll(f.workDir, 0o755); err != nil {
		return fatal(log, "bench", err)
	}
	f.o.WorkDir, f.o.Logger, f.o.Progress = f.workDir, log, os.Stderr
	ctx, stop := signalContext()
	defer stop()
	res, err := benchmarks.Run(ctx, f.o)
	if res != nil {
		if werr := writeBenchResults(res, f.out, f.jsonOut, log); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		log.Error("bench failed", "err", err, "logs", f.workDir)
		return 1
	}
	if !keep {
		_ = os.RemoveAll(f.workDir)
	}
	return 0
}

// build turns the flags into options.
func (f *benchFlags) build(args []string) error {
	var err error
	if f.o.Scenarios, err = benchmarks.ParseScenarios(f.scenarios); err != nil {
		return err
	}
	if f.o.Proto, err = loadgen.ParseProto(f.proto); err != nil {
		return err
	}
	if f.o.SingleFormat, err = loadgen.ParseFormat(f.format); err != nil {
		return err
	}
	for _, r := range strings.Split(f.overloadRuns, ",") {
		if r = strings.TrimSpace(r); r != "" {
			f.o.OverloadRuns = append(f.o.OverloadRuns, r)
		}
	}
	// A share of 0 on the command line means none (0 is the options' default).
	if f.o.TradeShare == 0 {
		f.o.TradeShare = -1
	}
	if f.o.InvalidShare == 0 {
		f.o.InvalidShare = -1
	}
	if f.o.WorkerProcs == 0 {
		f.o.WorkerProcs = -1 // Options: 0 is the default (1), negative Go's
	}
	if f.jsonOut == "" {
		f.jsonOut = filepath.Join(filepath.Dir(f.out), "results.json")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the sluice binary: %w", err)
	}
	f.o.Launcher = func(args ...string) *exec.Cmd {
		cmd := exec.Command(exe, args...)
		cmd.Env = os.Environ()
		return cmd
	}
	f.o.Command = strings.TrimSpace("sluice bench " + strings.Join(args, " "))
	return nil
}

// writeBenchResults writes the markdown, the JSON and the sweep plot.
func writeBenchResults(res *benchmarks.Results, out, jsonOut string, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	for _, sc := range res.Scenarios {
		if sc.Sweep != nil && sc.Sweep.Plot != "" {
			title := fmt.Sprintf("sluice publish: latency against offered rate (%s, %d×%d)",
				res.Settings.Proto, res.Settings.Conns, res.Settings.Streams)
			if err := os.WriteFile(filepath.Join(filepath.Dir(out), sc.Sweep.Plot), sc.Sweep.SVG(title), 0o644); err != nil {
				return err
			}
		}
	}
	js, err := res.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(jsonOut, js, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(out, res.Markdown(), 0o644); err != nil {
		return err
	}
	log.Info("results written", "markdown", out, "json", jsonOut)
	return nil
}

// runBenchServer runs one of the suite's own servers as a child process:
// `sluice bench --serve baseline|naive-gateway|naive-worker [flags]`. It
// prints "ready [ADDR]" once serving and drains on SIGTERM.
func runBenchServer(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "sluice bench --serve: baseline, naive-gateway or naive-worker")
		return 2
	}
	kind := args[0]
	fs := flag.NewFlagSet("bench --serve "+kind, flag.ContinueOnError)
	variant := fs.String("variant", "plain", "baseline variant: plain, buffered or body")
	listen := fs.String("listen", "127.0.0.1:0", "data listener")
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "NATS server")
	prefix := fs.String("prefix", naive.DefaultPrefix, "subject prefix of the naive pipeline")
	cert := fs.String("tls-cert", "", "TLS certificate file")
	key := fs.String("tls-key", "", "TLS key file")
	durable := fs.Bool("durable", false, "naive pipeline: one JetStream message per request, stored before the 202, outcomes stored before the ack")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	var srv interface{ Shutdown(context.Context) error }
	var addr string
	var err error
	switch kind {
	case "baseline":
		srv, addr, err = serveBaseline(*variant, *listen, *cert, *key)
	case "naive-gateway":
		srv, addr, err = serveNaiveGateway(*natsURL, *prefix, *listen, *cert, *key, *durable)
	case "naive-worker":
		srv, err = serveNaiveWorker(*natsURL, *prefix, *durable)
	default:
		err = fmt.Errorf("unknown server %q: want baseline, naive-gateway or naive-worker", kind)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench --serve %s: %v\n", kind, err)
		return 1
	}
	fmt.Println(strings.TrimSpace("ready " + addr))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(os.Stderr, "sluice bench --serve %s: shutdown: %v\n", kind, err)
		return 1
	}
	return 0
}

func serveBaseline(variant, listen, cert, key string) (*baseline.Server, string, error) {
	v, err := baseline.ParseVariant(variant)
	if err != nil {
		return nil, "", err
	}
	s, err := baseline.New(baseline.Options{Variant: v, Listen: listen, TLSCert: cert, TLSKey: key})
	if err != nil {
		return nil, "", err
	}
	if err := s.Start(); err != nil {
		return nil, "", err
	}
	return s, s.Addr(), nil
}

// closingServer shuts a server down, then closes its NATS connection.
type closingServer struct {
	srv interface{ Shutdown(context.Context) error }
	nc  *nats.Conn
}

func (c closingServer) Shutdown(ctx context.Context) error {
	err := c.srv.Shutdown(ctx)
	c.nc.Close()
	return err
}

func serveNaiveGateway(url, prefix, listen, cert, key string, durable bool) (closingServer, string, error) {
	nc, err := nats.Connect(url, nats.Name("naive-gateway"), nats.MaxReconnects(-1))
	if err != nil {
		return closingServer{}, "", err
	}
	g, err := naive.NewGateway(naive.GatewayOptions{Conn: nc, Prefix: prefix, Listen: listen, TLSCert: cert, TLSKey: key, Durable: durable})
	if err == nil {
		err = g.Start()
	}
	if err != nil {
		nc.Close()
		return closingServer{}, "", err
	}
	return closingServer{srv: g, nc: nc}, g.Addr(), nil
}

func serveNaiveWorker(url, prefix string, durable bool) (closingServer, error) {
	nc, err := nats.Connect(url, nats.Name("naive-worker"), nats.MaxReconnects(-1))
	if err != nil {
		return closingServer{}, err
	}
	store := enrich.NewStore()
	store.Replace(enrich.Sample())
	w, err := naive.NewWorker(naive.WorkerOptions{Conn: nc, Prefix: prefix, Store: store, Durable: durable})
	if err == nil {
		err = w.Start()
	}
	if err != nil {
		nc.Close()
		return closingServer{}, err
	}
	return closingServer{srv: w, nc: nc}, nil
}
