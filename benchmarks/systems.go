package benchmarks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/benchmarks/baseline"
	"github.com/sluice-dev/sluice/benchmarks/loadgen"
	"github.com/sluice-dev/sluice/benchmarks/naive"
	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/internal/selfsigned"
	"github.com/sluice-dev/sluice/schemas"
)

// The systems under test.
const (
	sysSluice   = "sluice"
	sysNaive    = "naive"
	sysBaseline = "baseline-" // + variant
	// sysSlow is a second sluice pipeline on the same NATS server, under
	// its own subject prefix, whose quotes worker is slowed on purpose
	// (--stage-delay, one batch at a time): the overload scenario's system,
	// where the worker group rather than the gateway is the bottleneck.
	sysSlow = "sluice-slow"
	// slowPrefix is sysSlow's subject prefix.
	slowPrefix = "slow"
	// sysDurable is a sluice pipeline in durable delivery (gateway and
	// workers with --delivery durable) under its own prefix, so that its
	// streams capture none of the core pipeline's subjects.
	sysDurable    = "sluice-durable"
	durablePrefix = "durable"
	// sysNaiveDurable is the naive pipeline in durable mode: one JetStream
	// message per request (see package naive).
	sysNaiveDurable    = "naive-durable"
	naiveDurablePrefix = "naivedur"
	// sysAnchor is the NATS server alone, stored into by the suite itself
	// (see anchor.go).
	sysAnchor = "anchor"
	// sysTraced is a core sluice pipeline under its own prefix whose
	// gateway and workers export spans (--otlp-endpoint) to a sink in the
	// suite at 1% head sampling (--trace-sample): what tracing costs.
	sysTraced    = "sluice-traced"
	tracedPrefix = "traced"
	// TraceSample is sysTraced's --trace-sample.
	TraceSample = 0.01
)

// system is a set of running processes that serves the HTTP API.
type system struct {
	name   string
	url    string
	procs  []*child
	prefix string // NATS subject prefix for the observer; "" has none
	edge   *child
}

// ensureSystem starts the named system unless it runs.
func (s *suite) ensureSystem(ctx context.Context, name string) (*system, error) {
	if sys, ok := s.systems[name]; ok {
		return sys, nil
	}
	var sys *system
	var err error
	switch {
	case name == sysSluice, name == sysSlow, name == sysDurable, name == sysTraced:
		sys, err = s.startSluice(ctx, name)
	case name == sysNaive:
		sys, err = s.startNaive(ctx, false)
	case name == sysNaiveDurable:
		sys, err = s.startNaive(ctx, true)
	case name == sysAnchor:
		var nc *child
		if nc, err = s.ensureNATS(ctx); err == nil {
			sys = &system{name: sysAnchor, procs: []*child{nc}}
		}
	case name == sysSluiceFast:
		sys, err = s.startEdgeGateway(ctx, name, "fast")
	case name == sysSluiceStd:
		sys, err = s.startEdgeGateway(ctx, name, "std")
	case name == sysNginx:
		sys, err = s.startNginx(ctx)
	case strings.HasPrefix(name, sysBaseline):
		sys, err = s.startBaseline(ctx, strings.TrimPrefix(name, sysBaseline))
	default:
		err = fmt.Errorf("unknown system %q", name)
	}
	if err != nil {
		return nil, err
	}
	s.systems[name] = sys
	return sys, nil
}

// tlsArgs returns the --tls-cert and --tls-key flags when the suite speaks
// h2, creating the certificate on first use.
func (s *suite) tlsArgs() ([]string, error) {
	if s.o.Proto != loadgen.ProtoH2 {
		return nil, nil
	}
	if s.certFile == "" {
		var err error
		var roots *x509.CertPool
		s.certFile, s.keyFile, roots, err = selfsigned.Write(s.o.WorkDir)
		if err != nil {
			return nil, fmt.Errorf("creating the TLS certificate: %w", err)
		}
		s.clientTLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return []string{"--tls-cert", s.certFile, "--tls-key", s.keyFile}, nil
}

func (s *suite) track(c *child) *child {
	s.children = append(s.children, c)
	return c
}

// ensureNATS starts the NATS server (JetStream on, for the reference data
// bucket) shared by sluice and the naive pipeline.
func (s *suite) ensureNATS(ctx context.Context) (*child, error) {
	if s.nats != nil {
		return s.nats, nil
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c, err := s.startChild("nats", RoleNATS, "nats", "--listen", addr,
		"--data", filepath.Join(s.o.WorkDir, "nats"), "--log-level", "warn", "--procs", strconv.Itoa(s.o.NATSProcs))
	if err != nil {
		return nil, err
	}
	s.track(c)
	url, err := c.waitLine(ctx)
	if err != nil {
		return nil, err
	}
	c.addr = url
	s.nats = c
	return c, nil
}

// startSluice starts a pipeline: reference data, one worker per group and
// a gateway. A slow one (sysSlow) lives under its own prefix and its quotes
// worker waits Options.OverloadStageDelay per event, one batch at a time,
// so that its capacity is set by the worker group. The durable one
// (sysDurable) runs --delivery durable under its own prefix, the others
// --delivery core.
func (s *suite) startSluice(ctx context.Context, name string) (*system, error) {
	nc, err := s.ensureNATS(ctx)
	if err != nil {
		return nil, err
	}
	// The core pipelines say --delivery core: the commands' default is
	// durable, which the durable scenario's own pipeline measures.
	prefix, tag, delivery := schemas.DefaultPrefix, "", "core"
	slow := name == sysSlow
	switch name {
	case sysSlow:
		prefix, tag = slowPrefix, "slow-"
	case sysDurable:
		prefix, tag, delivery = durablePrefix, "durable-", "durable"
	}
	var traceArgs []string
	if name == sysTraced {
		prefix, tag = tracedPrefix, "traced-"
		sink, err := s.otlpSink()
		if err != nil {
			return nil, err
		}
		traceArgs = []string{"--otlp-endpoint", sink, "--trace-sample", strconv.FormatFloat(TraceSample, 'g', -1, 64)}
	}
	load, err := s.startChild(tag+"refdata-load", RoleNATS, "refdata", "load", "--nats", nc.addr, "--prefix", prefix,
		"--log-level", "warn", "sample")
	if err != nil {
		return nil, err
	}
	if err := load.waitExit(ctx); err != nil {
		return nil, fmt.Errorf("loading reference data: %w", err)
	}
	sys := &system{name: name, prefix: prefix}
	for _, group := range []string{"quotes", "trades"} {
		ops, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args := []string{"worker", "--nats", nc.addr, "--prefix", prefix, "--group", group, "--ops-listen", ops, "--log-level", "warn",
			"--procs", strconv.Itoa(s.o.WorkerProcs), "--delivery", delivery}
		if slow && group == "quotes" {
			args = append(args, "--stage-delay", s.o.OverloadStageDelay.String(), "--concurrency", "1")
		}
		args = append(args, traceArgs...)
		w, err := s.startChild(tag+"worker-"+group, RoleWorker, args...)
		if err != nil {
			return nil, err
		}
		s.track(w).ops = ops
		if err := w.waitHTTP(ctx, "http://"+ops+"/readyz"); err != nil {
			return nil, err
		}
		sys.procs = append(sys.procs, w)
	}
	gw, err := s.startGateway(ctx, nc.addr, prefix, tag, delivery, traceArgs...)
	if err != nil {
		return nil, err
	}
	sys.edge, sys.url = gw, s.o.Proto.Scheme()+"://"+gw.addr
	sys.procs = append([]*child{gw}, append(sys.procs, nc)...)
	return sys, nil
}

func (s *suite) startGateway(ctx context.Context, natsURL, prefix, tag, delivery string, extra ...string) (*child, error) {
	data, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ops, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tlsArgs, err := s.tlsArgs()
	if err != nil {
		return nil, err
	}
	args := append([]string{"gateway", "--nats", natsURL, "--prefix", prefix, "--listen", data, "--ops-listen", ops,
		"--log-level", "warn", "--delivery", delivery}, append(tlsArgs, extra...)...)
	gw, err := s.startChild(tag+"gateway", RoleEdge, args...)
	if err != nil {
		return nil, err
	}
	s.track(gw)
	gw.addr, gw.ops = data, ops
	if err := gw.waitHTTP(ctx, "http://"+ops+"/readyz"); err != nil {
		return nil, err
	}
	return gw, nil
}

func (s *suite) startNaive(ctx context.Context, durable bool) (*system, error) {
	nc, err := s.ensureNATS(ctx)
	if err != nil {
		return nil, err
	}
	name, prefix, tag, extra := sysNaive, naive.DefaultPrefix, "", []string{}
	if durable {
		name, prefix, tag, extra = sysNaiveDurable, naiveDurablePrefix, "durable-", []string{"--durable"}
	}
	extra = append(extra, "--prefix", prefix)
	w, err := s.startChild(tag+"naive-worker", RoleWorker, append([]string{"bench", "--serve", "naive-worker", "--nats", nc.addr}, extra...)...)
	if err != nil {
		return nil, err
	}
	s.track(w)
	if _, err := w.waitLine(ctx); err != nil {
		return nil, err
	}
	gw, err := s.startServer(ctx, tag+"naive-gateway", append([]string{"--serve", "naive-gateway", "--nats", nc.addr}, extra...)...)
	if err != nil {
		return nil, err
	}
	return &system{name: name, url: s.o.Proto.Scheme() + "://" + gw.addr,
		procs: []*child{gw, w, nc}, prefix: prefix, edge: gw}, nil
}

func (s *suite) startBaseline(ctx context.Context, variant string) (*system, error) {
	if _, err := baseline.ParseVariant(variant); err != nil {
		return nil, err
	}
	c, err := s.startServer(ctx, "baseline-"+variant, "--serve", "baseline", "--variant", variant)
	if err != nil {
		return nil, err
	}
	return &system{name: sysBaseline + variant, url: s.o.Proto.Scheme() + "://" + c.addr,
		procs: []*child{c}, edge: c}, nil
}

// startServer starts one of the bench command's own HTTP servers and waits
// for its "ready ADDR" line.
func (s *suite) startServer(ctx context.Context, name string, args ...string) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tlsArgs, err := s.tlsArgs()
	if err != nil {
		return nil, err
	}
	args = append(append([]string{"bench"}, args...), "--listen", addr)
	c, err := s.startChild(name, RoleEdge, append(args, tlsArgs...)...)
	if err != nil {
		return nil, err
	}
	s.track(c)
	if c.addr, err = c.waitLine(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// observer returns the end-to-end observer of a system's subject prefix.
func (s *suite) observer(sys *system) (*loadgen.Observer, error) {
	if sys.prefix == "" || s.nats == nil {
		return nil, nil
	}
	if ob, ok := s.observers[sys.prefix]; ok {
		return ob, nil
	}
	ob, err := loadgen.NewObserver(loadgen.ObserverOptions{URL: s.nats.addr, Prefix: sys.prefix,
		Instruments: s.instruments, SampleEvery: s.o.SampleEvery})
	if err != nil {
		return nil, err
	}
	s.observers[sys.prefix] = ob
	return ob, nil
}

// sampleInstruments is the symbol list of every payload and observer.
func sampleInstruments() []schemas.Instrument { return enrich.Sample().Instruments }
