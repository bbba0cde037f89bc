package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// ScenarioScale is the scale scenario (issue #13): a durable quotes group
// slowed with --stage-delay at 1, 2 and 3 workers, the order of every
// symbol's events in the enriched stream, and a kill -9 of one worker of
// three.
const ScenarioScale = "scale"

func init() { Scenarios = append(Scenarios, ScenarioScale) }

const (
	// sysScale is the scale scenario's pipeline: durable, under its own
	// prefix, its quotes workers slowed and started one by one.
	sysScale    = "sluice-scale"
	scalePrefix = "scale"
	// scaleWorkers is the most quotes workers the scenario runs.
	scaleWorkers = 3
	// scaleOffer is the open-loop rate of every run over the nominal
	// capacity of scaleWorkers workers (1/stage delay each): above what
	// three can drain, so that the gateway's admission keeps a backlog
	// for every worker count and sheds the rest.
	scaleOffer = 1.25
	// scaleAckWait is the workers' --ack-wait: a batch in flight on the
	// killed worker is delivered again after it.
	scaleAckWait = 5 * time.Second
	// scaleWarmup lets a worker just started take its share and the
	// gateway's admission learn the group's new drain rate.
	scaleWarmup = 2 * time.Second
	// targetScaleLinear bounds N workers' rate over N times one worker's.
	targetScaleLinear = 0.9
)

// Scale is the scale scenario's figures.
type Scale struct {
	// StageDelay is each quotes worker's --stage-delay (with --concurrency
	// 1: at most 1/StageDelay events/s a worker); Partitions the quotes
	// group's partition consumers (1: today's single unordered consumer);
	// Offered the open-loop rate of every run.
	StageDelay time.Duration `json:"stage_delay_ns"`
	Partitions int           `json:"partitions"`
	Offered    float64       `json:"offered_per_sec"`
	// Steps are the worker counts, their windows merged; Windows every
	// window in the order taken (see scalePlan).
	Steps   []ScaleStep `json:"steps"`
	Windows []ScaleStep `json:"windows"`
	Order   ScaleOrder  `json:"order"`
	// Failover is the kill -9 run, nil when it did not run.
	Failover *ScaleFailover `json:"failover,omitempty"`
}

// ScaleStep is one worker count's window.
type ScaleStep struct {
	Workers int `json:"workers"`
	// Rounds are the Enriched of each window merged into a step.
	Rounds []float64 `json:"rounds,omitempty"`
	// Enriched is the events/s the enriched stream stored over the window;
	// Linear that over Workers times the 1-worker run's.
	Enriched float64 `json:"enriched_per_sec"`
	Linear   float64 `json:"vs_linear,omitempty"`
	// Accepted is the gateway's 202s per second, Shed its 503s.
	Accepted float64 `json:"accepted_per_sec"`
	Shed     uint64  `json:"shed"`
	// Cores is the CPU the system and the generator used over the window,
	// in cores: how far the two-core machine is from saturation.
	Cores float64 `json:"cores"`
	// Waiting is the quotes group's ingest batches not yet delivered to a
	// worker, summed over its consumers, sampled every 250 ms over the
	// window: the mean and the least. Ready is the mean number of
	// partitions with a batch waiting. A group whose workers never ran dry
	// has a least above zero: admission did not starve it.
	Waiting    float64 `json:"batches_waiting_mean"`
	WaitingMin uint64  `json:"batches_waiting_min"`
	Ready      float64 `json:"partitions_ready_mean"`
	// Delivered is the mean of the batches delivered to the workers and
	// not yet acked (the consumers' ack pending): past one per worker
	// (--concurrency 1), the rest wait inside a busy worker, and with
	// partitions their partitions wait with them.
	Delivered float64 `json:"batches_delivered_mean"`
	// PerBatch is the events per batch the quotes workers processed over
	// the window, Busy the share of the window they spent in a batch (from
	// delivery to ack; their metrics, averaged over the workers). A busy
	// worker does at most PerBatch events per (PerBatch × stage delay +
	// what a batch costs beyond its delay).
	PerBatch float64 `json:"events_per_batch"`
	Busy     float64 `json:"busy"`
}

// scaleEnv is the scale pipeline: its processes, the suite's NATS
// connection to it and the tap on its ingest subjects.
type scaleEnv struct {
	s       *suite
	sys     *system
	subj    schemas.Subjects
	nc      *nats.Conn
	js      jetstream.JetStream
	workers []*child
	// ackWait is the workers' --ack-wait, warmup every run's warm-up:
	// scaleAckWait and scaleWarmup, shorter in a quick run.
	ackWait, warmup time.Duration
	killed          string
	started         int // quotes workers started so far
	mu              sync.Mutex
	check           *scaleCheck
	tapErr          int
}

// scale runs the scale scenario.
func (s *suite) scale(ctx context.Context) (*ScenarioResult, error) {
	d := s.o.ScaleStageDelay
	sc := &Scale{StageDelay: d, Offered: scaleOffer * scaleWorkers * float64(time.Second) / float64(d)}
	sr := &ScenarioResult{Name: ScenarioScale, Scale: sc,
		Title: "scale: a durable worker group at 1, 2 and 3 workers; order per symbol; kill -9 of a worker",
		Description: fmt.Sprintf("A durable pipeline under the prefix `%s` (gateway and workers with --delivery durable) whose quotes "+
			"workers are slowed with `--stage-delay %v --concurrency 1` (at most %s events/s each, a wait rather than CPU, so that the "+
			"workers and not the machine's two cores are the bottleneck) and run with `--ack-wait %v`. Quotes alone, no invalid "+
			"events, open loop at %.2f× the nominal capacity of %d workers (%s req/s) for every worker count: the gateway's "+
			"admission keeps each group's backlog at its queue-delay bound and sheds the rest (503). Workers are started one by one "+
			"(then, past the kill below, a third again and stopped one by one: windows at 1, 2, 3, 3, 2, 1 workers); each count's rate "+
			"is what the enriched stream stored over its windows, reported against N × the 1-worker rate. A tap "+
			"on the ingest subjects records the order in which the gateway published every event; at the end the enriched stream "+
			"is read back and every symbol's events checked in ingest order, each stored once, none missing. With %d workers, "+
			"one is killed with SIGKILL mid-run: per partition, the time from the kill to its next stored event.",
			scalePrefix, d, thousands(float64(time.Second)/float64(d)), scaleAckWait, scaleOffer, scaleWorkers, thousands(sc.Offered), scaleWorkers)}
	e, err := s.startScale(ctx)
	if err != nil {
		return sr, err
	}
	defer e.close()
	if err := e.run(ctx, sc, sr); err != nil {
		return sr, err
	}
	if err := e.drain(ctx); err != nil {
		return sr, err
	}
	if err := e.readBack(ctx); err != nil {
		return sr, err
	}
	sc.Order = e.check.result()
	f := e.check.failover(sc.Partitions)
	f.Killed, f.AckWait = e.killed, e.ackWait
	sc.Failover = &f
	sr.Notes = scaleNotes(sc)
	for _, n := range sr.Notes {
		s.progress("  %s", n)
	}
	return sr, nil
}

func (s *suite) progress(format string, args ...any) {
	if s.o.Progress != nil {
		fmt.Fprintf(s.o.Progress, format+"\n", args...)
	}
}

// scalePlan is the order of the scenario's windows: worker counts, and 0
// for the kill -9 run. Two rounds or more go up to three workers, kill one,
// start another and come down again (1, 2, 3, kill, 3, 2, 1), so that a
// drift of the machine weighs on every count alike; one round goes up only.
func scalePlan(rounds int) []int {
	plan := []int{1, 2, 3, 0}
	if rounds >= 2 {
		plan = append(plan, 3, 2, 1)
	}
	return plan
}

// run takes the windows of scalePlan, then merges each worker count's.
func (e *scaleEnv) run(ctx context.Context, sc *Scale, sr *ScenarioResult) error {
	s := e.s
	byCount := map[int][]ScaleStep{}
	runs := map[int][]Measurement{}
	for _, n := range scalePlan(s.o.Rounds) {
		if n == 0 {
			var err error
			if sc.Partitions, err = e.partitions(ctx); err != nil {
				return err
			}
			if err := e.kill(ctx, sc.Offered); err != nil {
				return err
			}
			continue
		}
		if err := e.setWorkers(ctx, n); err != nil {
			return err
		}
		run, st, err := e.step(ctx, n, sc.Offered)
		if err != nil {
			return err
		}
		sc.Windows = append(sc.Windows, st)
		byCount[n] = append(byCount[n], st)
		runs[n] = append(runs[n], *run)
		sr.Runs = append(sr.Runs, *run)
		s.progress("  scale, %d workers: %s enriched events/s stored, %s accepted/s, %d shed, %.2f cores busy, "+
			"batches waiting %.1f (least %d) in %.1f partitions, %.1f delivered, %.1f events a batch, workers busy %.0f%%",
			n, thousands(st.Enriched), thousands(st.Accepted), st.Shed, st.Cores, st.Waiting, st.WaitingMin, st.Ready, st.Delivered, st.PerBatch, st.Busy*100)
	}
	for n := 1; n <= scaleWorkers; n++ {
		st := mergeSteps(byCount[n])
		for _, w := range byCount[n] {
			st.Rounds = append(st.Rounds, w.Enriched)
		}
		sc.Steps = append(sc.Steps, st)
		sr.Rows = append(sr.Rows, aggregate(scaleVariant(n, sc.StageDelay), runs[n]))
	}
	for i := range sc.Steps {
		sc.Steps[i].Linear = linearRatio(sc.Steps[i].Enriched, sc.Steps[i].Workers, sc.Steps[0].Enriched)
	}
	return nil
}

// setWorkers starts or stops (SIGTERM: the last batch finishes) quotes
// workers until n run.
func (e *scaleEnv) setWorkers(ctx context.Context, n int) error {
	for len(e.workers) < n {
		if err := e.addWorker(ctx); err != nil {
			return err
		}
	}
	for len(e.workers) > n {
		w := e.workers[len(e.workers)-1]
		e.workers = e.workers[:len(e.workers)-1]
		e.dropProc(w)
		if err := w.stop(15 * time.Second); err != nil {
			return err
		}
	}
	return nil
}

// dropProc takes w out of the system's processes.
func (e *scaleEnv) dropProc(w *child) {
	e.sys.procs = slices.DeleteFunc(e.sys.procs, func(c *child) bool { return c == w })
}

// mergeSteps averages the windows of one worker count.
func mergeSteps(ws []ScaleStep) ScaleStep {
	if len(ws) == 0 {
		return ScaleStep{}
	}
	m := ScaleStep{Workers: ws[0].Workers, WaitingMin: ws[0].WaitingMin}
	for _, w := range ws {
		m.Enriched += w.Enriched
		m.Accepted += w.Accepted
		m.Shed += w.Shed
		m.Cores += w.Cores
		m.Waiting += w.Waiting
		m.WaitingMin = min(m.WaitingMin, w.WaitingMin)
		m.Ready += w.Ready
		m.Delivered += w.Delivered
		m.PerBatch += w.PerBatch
		m.Busy += w.Busy
	}
	k := float64(len(ws))
	m.Enriched, m.Accepted, m.Cores, m.Waiting, m.Ready, m.Delivered, m.PerBatch, m.Busy =
		m.Enriched/k, m.Accepted/k, m.Cores/k, m.Waiting/k, m.Ready/k, m.Delivered/k, m.PerBatch/k, m.Busy/k
	return m
}

// scaleVariant is the row of n workers.
func scaleVariant(n int, d time.Duration) variant {
	return variant{name: fmt.Sprintf("scale-%dw", n), system: sysScale, payload: singleJSON, quotesOnly: true, validOnly: true,
		label: fmt.Sprintf("sluice durable, quotes workers slowed to %v per event: %s, 1 quote, 202 once stored, open loop", d, plural(n, "worker"))}
}

// startScale starts the pipeline with one quotes worker: reference data,
// a trades worker (the gateway is ready once every group has one), the
// gateway, and the suite's tap on the ingest subjects.
func (s *suite) startScale(ctx context.Context) (*scaleEnv, error) {
	nc, err := s.ensureNATS(ctx)
	if err != nil {
		return nil, err
	}
	subj, err := schemas.NewSubjects(scalePrefix)
	if err != nil {
		return nil, err
	}
	e := &scaleEnv{s: s, subj: subj, check: newScaleCheck(), sys: &system{name: sysScale, prefix: scalePrefix},
		ackWait: scaleAckWait, warmup: scaleWarmup}
	if s.o.Quick {
		e.ackWait, e.warmup = 2*time.Second, 500*time.Millisecond
	}
	if e.nc, err = nats.Connect(nc.addr); err != nil {
		return nil, fmt.Errorf("scale: connecting: %w", err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		e.nc.Close()
		return nil, err
	}
	sub, err := e.nc.Subscribe(subj.Prefix()+".ingest.>", e.onIngest)
	if err == nil {
		err = sub.SetPendingLimits(-1, -1)
	}
	if err != nil {
		e.nc.Close()
		return nil, fmt.Errorf("scale: the ingest tap: %w", err)
	}
	load, err := s.startChild("scale-refdata-load", RoleNATS, "refdata", "load", "--nats", nc.addr, "--prefix", scalePrefix,
		"--log-level", "warn", "sample")
	if err == nil {
		err = load.waitExit(ctx)
	}
	if err != nil {
		e.nc.Close()
		return nil, fmt.Errorf("scale: loading reference data: %w", err)
	}
	trades, err := e.startWorker(ctx, "trades")
	if err != nil {
		e.nc.Close()
		return nil, err
	}
	e.sys.procs = []*child{trades, nc}
	if err := e.addWorker(ctx); err != nil {
		e.nc.Close()
		return nil, err
	}
	gw, err := s.startGateway(ctx, nc.addr, scalePrefix, "scale-", "durable", s.partitionArgs()...)
	if err != nil {
		e.nc.Close()
		return nil, err
	}
	e.sys.edge, e.sys.url = gw, s.o.Proto.Scheme()+"://"+gw.addr
	e.sys.procs = append([]*child{gw}, e.sys.procs...)
	s.systems[sysScale] = e.sys
	return e, nil
}

// partitionArgs passes --partitions when the options set it.
func (s *suite) partitionArgs() []string {
	if s.o.ScalePartitions <= 0 {
		return nil
	}
	return []string{"--partitions", strconv.Itoa(s.o.ScalePartitions)}
}

// startWorker starts a durable worker of group; a quotes worker is slowed.
func (e *scaleEnv) startWorker(ctx context.Context, group string) (*child, error) {
	s := e.s
	ops, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"worker", "--nats", s.nats.addr, "--prefix", scalePrefix, "--group", group, "--ops-listen", ops,
		"--log-level", "warn", "--procs", strconv.Itoa(s.o.WorkerProcs), "--delivery", "durable", "--ack-wait", e.ackWait.String()}
	name := "scale-worker-" + group
	if group == "quotes" {
		args = append(args, "--stage-delay", s.o.ScaleStageDelay.String(), "--concurrency", "1")
		e.started++
		name = fmt.Sprintf("scale-worker-quotes-%d", e.started)
	}
	args = append(args, s.partitionArgs()...)
	w, err := s.startChild(name, RoleWorker, args...)
	if err != nil {
		return nil, err
	}
	s.track(w).ops = ops
	if err := w.waitHTTP(ctx, "http://"+ops+"/readyz"); err != nil {
		return nil, err
	}
	return w, nil
}

// addWorker starts one more quotes worker.
func (e *scaleEnv) addWorker(ctx context.Context) error {
	w, err := e.startWorker(ctx, "quotes")
	if err != nil {
		return err
	}
	e.workers = append(e.workers, w)
	e.sys.procs = append(e.sys.procs, w)
	return nil
}

// onIngest reads a batch frame published on an ingest subject: the order
// of its events is their ingest order; a partitioned subject
// (<prefix>.ingest.quote.<p>) names their partition.
func (e *scaleEnv) onIngest(m *nats.Msg) {
	part := 0
	if rest, ok := strings.CutPrefix(m.Subject, e.subj.Ingest(schemas.KindQuote)+"."); ok {
		part, _ = strconv.Atoi(rest)
	} else if m.Subject != e.subj.Ingest(schemas.KindQuote) {
		return // trades
	}
	now := time.Now().UnixNano()
	r := schemas.NewReader(m.Data)
	n, err := schemas.ReadBatchFrame(&r)
	var ev schemas.Event
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.tapErr++
		return
	}
	for range n {
		if err := ev.DecodeMsgpack(&r); err != nil {
			e.tapErr++
			if r.Err() != nil {
				return
			}
			continue
		}
		e.check.ingested(strings.Clone(ev.ID), part, now)
	}
}

// storedSeq is the enriched stream's last sequence number.
func (e *scaleEnv) storedSeq(ctx context.Context) (uint64, error) {
	st, err := e.js.Stream(ctx, bus.EnrichedStream(e.subj))
	if err != nil {
		return 0, err
	}
	return st.CachedInfo().State.LastSeq, nil
}

// step measures n workers: open loop at rate, the enriched stream's
// last sequence read at the window's start and end.
func (e *scaleEnv) step(ctx context.Context, n int, rate float64) (*Measurement, ScaleStep, error) {
	var seqs [2]uint64
	var times [2]time.Time
	var errs [2]error
	var bl *backlog
	var work [2]workerWork
	spec := runSpec{v: scaleVariant(n, e.s.o.ScaleStageDelay), mode: loadgen.Open, rate: rate, warmup: e.warmup,
		label: fmt.Sprintf("scale, %d workers", n),
		onWindow: func(start bool) {
			i := 1
			if start {
				i = 0
				bl = e.sampleBacklog(ctx)
			} else {
				bl.finish()
			}
			seqs[i], errs[i] = e.storedSeq(ctx)
			times[i] = time.Now()
			for _, w := range e.workers {
				ww, err := scrapeWork(w.ops)
				if err != nil {
					errs[i] = errors.Join(errs[i], err)
				}
				work[i] = work[i].add(ww)
			}
		}}
	run, err := e.s.measure(ctx, spec)
	if err == nil {
		err = errors.Join(errs[:]...)
	}
	if err != nil {
		return nil, ScaleStep{}, fmt.Errorf("scale, %d workers: %w", n, err)
	}
	st := ScaleStep{Workers: n, Accepted: run.Load.ReqPerSec, Shed: run.Load.Status[503] + run.Load.Status[429]}
	if bl != nil && bl.samples > 0 {
		k := float64(bl.samples)
		st.Waiting, st.WaitingMin, st.Ready, st.Delivered = float64(bl.waiting)/k, bl.least, float64(bl.ready)/k, float64(bl.delivered)/k
	}
	if secs := times[1].Sub(times[0]).Seconds(); secs > 0 {
		st.Enriched = float64(seqs[1]-seqs[0]) / secs
	}
	if d := work[1].sub(work[0]); d.batches > 0 && n > 0 {
		st.PerBatch, st.Busy = d.events/d.batches, d.busy/times[1].Sub(times[0]).Seconds()/float64(n)
	}
	if secs := run.Load.Duration.Seconds(); secs > 0 {
		for _, p := range run.CPU {
			st.Cores += p.Seconds / secs
		}
	}
	return run, st, nil
}

// backlog samples the quotes group's consumers on the ingest stream until
// finished.
type backlog struct {
	stop, done                chan struct{}
	samples                   int
	waiting, ready, delivered uint64
	least                     uint64
}

// sampleBacklog starts sampling the quotes consumers every 250 ms.
func (e *scaleEnv) sampleBacklog(ctx context.Context) *backlog {
	b := &backlog{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		st, err := e.js.Stream(ctx, bus.IngestStream(e.subj))
		if err != nil {
			return
		}
		var names []string
		lister := st.ConsumerNames(ctx)
		for name := range lister.Name() {
			if name == "quotes" || strings.HasPrefix(name, "quotes-p") {
				names = append(names, name)
			}
		}
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var waiting, ready uint64
			for _, name := range names {
				c, err := st.Consumer(ctx, name)
				if err != nil {
					return
				}
				info := c.CachedInfo()
				if n := info.NumPending; n > 0 {
					waiting += n
					ready++
				}
				b.delivered += uint64(info.NumAckPending)
			}
			if b.samples == 0 || waiting < b.least {
				b.least = waiting
			}
			b.samples++
			b.waiting += waiting
			b.ready += ready
		}
	}()
	return b
}

// finish stops the sampling and waits for it.
func (b *backlog) finish() {
	if b == nil {
		return
	}
	close(b.stop)
	<-b.done
}

// partitions counts the quotes group's consumers on the ingest stream:
// <group>-p<i> each, or the one unpartitioned <group>.
func (e *scaleEnv) partitions(ctx context.Context) (int, error) {
	st, err := e.js.Stream(ctx, bus.IngestStream(e.subj))
	if err != nil {
		return 0, err
	}
	n := 0
	names := st.ConsumerNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, "quotes-p") {
			n++
		}
	}
	if err := names.Err(); err != nil {
		return 0, fmt.Errorf("scale: listing the ingest consumers: %w", err)
	}
	return max(n, 1), nil
}

// kill runs the failover window: open loop at rate with every worker up,
// the last one killed with SIGKILL a second in, the window long enough for
// its in-flight batch's AckWait to pass and the batch to be stored.
func (e *scaleEnv) kill(ctx context.Context, rate float64) error {
	s := e.s
	victim := e.workers[len(e.workers)-1]
	payloads, err := loadgen.NewPayloads(s.payloadOptions(scaleVariant(scaleWorkers, s.o.ScaleStageDelay)))
	if err != nil {
		return err
	}
	killErr := errors.New("the window did not start")
	window := e.ackWait + 4*time.Second
	var wg sync.WaitGroup
	cfg := loadgen.Config{Target: e.sys.url,
		Client:   loadgen.ClientOptions{Proto: s.o.Proto, Conns: s.o.Conns, Streams: s.o.Streams, TLS: s.clientTLS},
		Payloads: payloads, Mode: loadgen.Open, Rate: rate, Warmup: e.warmup, Duration: window,
		Label: "scale, kill -9 of a worker", Progress: s.o.Progress,
		OnWindow: func(start bool) {
			if !start {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					killErr = ctx.Err()
					return
				}
				now := time.Now()
				e.mu.Lock()
				e.check.killed(now.UnixNano(), now.Add(window-time.Second).UnixNano())
				e.mu.Unlock()
				killErr = victim.cmd.Process.Kill()
			}()
		}}
	res, err := loadgen.Run(ctx, cfg)
	wg.Wait()
	if err != nil {
		return err
	}
	if killErr != nil {
		return fmt.Errorf("scale: killing %s: %w", victim.name, killErr)
	}
	<-victim.exited
	e.killed = victim.name
	e.workers = e.workers[:len(e.workers)-1]
	e.dropProc(victim)
	s.progress("%s", res)
	return nil
}

// drain waits until every ingested batch is acked: the ingest stream, a
// work queue, is then empty.
func (e *scaleEnv) drain(ctx context.Context) error {
	deadline := time.Now().Add(e.ackWait + 20*time.Second)
	for {
		st, err := e.js.Stream(ctx, bus.IngestStream(e.subj))
		if err != nil {
			return err
		}
		if st.CachedInfo().State.Msgs == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("scale: %d ingest batches still unacked", st.CachedInfo().State.Msgs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readBack reads the enriched stream's quotes in stream order into the
// check.
func (e *scaleEnv) readBack(ctx context.Context) error {
	last, err := e.storedSeq(ctx)
	if err != nil || last == 0 {
		return err
	}
	c, err := e.js.OrderedConsumer(ctx, bus.EnrichedStream(e.subj), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{e.subj.Prefix() + ".enriched." + schemas.KindQuote.String() + ".>"}})
	if err != nil {
		return fmt.Errorf("scale: reading the enriched stream back: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var ev schemas.Enriched
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("scale: reading the enriched stream back: %w", err)
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			r := schemas.NewReader(m.Data())
			if err := ev.DecodeMsgpack(&r); err != nil {
				return fmt.Errorf("scale: enriched event %d: %w", md.Sequence.Stream, err)
			}
			e.check.storedEvent(strings.Clone(ev.ID), strings.Clone(ev.Subject), md.Timestamp.UnixNano())
			if md.Sequence.Stream >= last {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("scale: reading the enriched stream back: %w", err)
		}
	}
	return errors.New("scale: reading the enriched stream back took over a minute")
}

// close stops the tap; the suite stops the processes.
func (e *scaleEnv) close() {
	e.nc.Close()
	if e.tapErr > 0 {
		e.s.log.Warn("scale: undecodable ingest frames or events", "count", e.tapErr)
	}
}

// scaleNotes are the scenario's figures under its table.
func scaleNotes(sc *Scale) []string {
	var parts []string
	for _, st := range sc.Steps {
		rounds := make([]string, len(st.Rounds))
		for i, r := range st.Rounds {
			rounds[i] = thousands(r)
		}
		parts = append(parts, fmt.Sprintf("%d: %s events/s (windows %s) = %.2f×, %.2f cores busy; batches waiting %.1f on average, %d at least, in %.1f partitions, "+
			"%.1f delivered and unacked; %.1f events a batch, workers in a batch %.0f%% of the time",
			st.Workers, thousands(st.Enriched), strings.Join(rounds, ", "), st.Linear, st.Cores, st.Waiting, st.WaitingMin, st.Ready, st.Delivered,
			st.PerBatch, st.Busy*100))
	}
	notes := []string{fmt.Sprintf("enriched events/s stored by N workers, against N × one worker's (target ≥ %.1f×), with the CPU "+
		"the system and the generator used, the quotes group's ingest batches not yet delivered to a worker and those delivered and not yet "+
		"acked (its consumers, sampled every 250 ms), and the workers' own figures: %s",
		targetScaleLinear, strings.Join(parts, "; "))}
	what := plural(sc.Partitions, "partition") + ", each partition's batches one at a time"
	if sc.Partitions <= 1 {
		what = "one unpartitioned consumer: batches of a symbol may run at once on different workers, so the check should find events out of order"
	}
	notes = append(notes, fmt.Sprintf("order per symbol, the whole scenario read back from the enriched stream (%s): %s", what, sc.Order))
	if sc.Failover != nil {
		notes = append(notes, sc.Failover.String())
	}
	return notes
}

// scaleTargets checks issue #13's scale targets: throughput against
// linear, order per symbol, and the failover time (reported: AckWait
// bounds it).
func scaleTargets(sc *Scale) []Target {
	ts := []Target{
		{Name: "scale throughput", Goal: fmt.Sprintf("a durable worker group slowed with --stage-delay: enriched events/s at 2 and 3 workers ≥ %.1f× linear (N × the 1-worker rate)", targetScaleLinear)},
		{Name: "scale order", Goal: "every symbol's enriched events stored in ingest order, each once, none missing, with 3 workers and a kill -9"},
		{Name: "scale failover", Goal: "time from a kill -9 of a worker to each partition's next stored event (the in-flight batch's AckWait bounds it), and the longest a partition then waits"},
	}
	for i := range ts {
		ts[i].Status, ts[i].Figure = NA, "not measured in this run"
	}
	if sc == nil || len(sc.Steps) == 0 {
		return ts
	}
	var parts []string
	ok := len(sc.Steps) == scaleWorkers
	for _, st := range sc.Steps[1:] {
		parts = append(parts, fmt.Sprintf("%d workers %.2f×", st.Workers, st.Linear))
		ok = ok && st.Linear >= targetScaleLinear
	}
	ts[0].Figure = fmt.Sprintf("%s (1 worker: %s events/s at --stage-delay %v; %s)", strings.Join(parts, ", "),
		thousands(sc.Steps[0].Enriched), sc.StageDelay, plural(sc.Partitions, "partition"))
	ts[0].Status = status(ok)
	if sc.Order.Stored > 0 {
		ts[1].Figure, ts[1].Status = sc.Order.String(), status(sc.Order.Intact())
	}
	if f := sc.Failover; f != nil && f.Partitions > 0 {
		ts[2].Figure = fmt.Sprintf("max %s over %s (--ack-wait %v), the longest an event of a partition waited after it %s; "+
			"the killed worker's in-flight events stored %s after the kill", ms(f.MaxStall), plural(f.Partitions, "partition"), f.AckWait,
			ms(f.MaxWait), ms(f.Recovered))
		ts[2].Status = Reported
		if f.Silent > 0 {
			ts[2].Figure += fmt.Sprintf("; %d partitions stored nothing after it", f.Silent)
			ts[2].Status = NotMet
		}
	}
	return ts
}
