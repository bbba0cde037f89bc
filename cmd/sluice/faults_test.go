package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

// faultCases are issue #11's faults on an in-process three-node JetStream
// cluster (streams R3), each on a cluster of its own, under a steady
// open-loop stream of quotes through two gateways to two quotes workers.
var faultCases = []struct {
	name  string
	fault func(*testing.T, *faultRig) string // injects the fault and undoes it; returns what it did
}{
	{"worker", faultWorkerStop},
	{"node", faultNodeRestart},
	{"partition", faultNodePartition},
	{"gateway", faultGatewayKill},
}

// TestFaults runs every fault case (SLUICE_INPROC_FAULTS=worker,node
// selects some) with durable delivery: it counts every quote answered 202,
// by id, and every quote in the enriched stream, by id, and fails on one
// acknowledged quote missing or one stored twice. It logs a table of the
// counts:
//
//	go test ./cmd/sluice/ -run TestFaults -v -count=1
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault cases skipped in -short mode: each runs a three-node cluster under load for 15-30 s")
	}
	var want []string
	if sel := os.Getenv("SLUICE_INPROC_FAULTS"); sel != "" {
		want = strings.Split(sel, ",")
	}
	var rows []faultRow
	for _, fc := range faultCases {
		if want != nil && !slices.Contains(want, fc.name) {
			continue
		}
		t.Run(fc.name, func(t *testing.T) {
			row := runFaultCase(t, fc.name, fc.fault)
			rows = append(rows, row)
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %6s %8s %7s %10s %5s %11s %7s %7s %6s %7s %6s  %-30s %s\n", "case", "acked", "enriched", "missing",
		"duplicates", "late", "redelivered", "deduped", "retried", "back", "settled", "took", "requests by status", "fault")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-10s %6d %8d %7d %10d %5d %11d %7d %7d %6v %7v %6v  %-30s %s\n", r.name, r.acked, r.stored, r.missing,
			r.duplicates, r.late, r.redelivered, r.deduped, r.retried, r.back.Round(100*time.Millisecond),
			r.settled.Round(100*time.Millisecond), r.took.Round(time.Second), fmt.Sprint(r.statuses), r.fault)
	}
	b.WriteString("requests by status: -1 a tick skipped (32 requests in flight to its gateway), 0 a transport error;\n")
	b.WriteString("acked: quotes answered 202; enriched: of them, in the enriched stream; duplicates: ids stored more than once;\n" +
		"late: acked, not yet in the enriched stream at the first read after the load stopped; redelivered: batches delivered to a worker again;\n" +
		"deduped: enriched events the stream refused as duplicates; retried: gateway publishes retried;\n" +
		"back: from the fault undone until every gateway had answered 202 to a request sent since;\n" +
		"settled: from the load's end until every acked quote was stored and the group's consumer had nothing pending\n")
	t.Logf("FAULTS (in-process cluster of 3, streams R3, durable delivery, 2 gateways, 2 quotes workers):\n%s", b.String())
}

// faultRow is one line of the table.
type faultRow struct {
	name                               string
	acked, stored, missing, duplicates int
	late                               int
	// redelivered counts batches delivered to a worker again, deduped the
	// enriched events the stream answered as duplicates (Nats-Msg-Id),
	// retried the gateways' publishes retried after an ack timeout or
	// error: the paths a fault exercises.
	redelivered, deduped, retried int
	// back is how long after the fault was undone every gateway had
	// answered 202 to a request sent since.
	back, settled, took time.Duration
	statuses            map[int]int
	fault               string
}

// Load and timing of a case: a request of loadPerRequest quotes every
// loadInterval, to the gateways in turn (1,000 quotes/s), for loadBefore,
// then the fault, then until every gateway answers 202 again (at most
// backWithin), then loadAfter more. The workers' ack wait is short so
// that a batch a stopped worker held comes back within seconds.
const (
	loadPerRequest = 10
	loadInterval   = 10 * time.Millisecond
	loadBefore     = 2 * time.Second
	loadAfter      = 3 * time.Second
	backWithin     = 20 * time.Second
	faultAckWait   = 3 * time.Second
	settleWithin   = 30 * time.Second
)

// runFaultCase starts a rig, streams quotes, runs fault under the stream,
// checks that each gateway accepts quotes again once the fault is undone,
// then waits until every acknowledged quote is in the enriched stream and
// the quotes consumer has nothing pending or unacknowledged, and counts.
func runFaultCase(t *testing.T, name string, fault func(*testing.T, *faultRig) string) faultRow {
	start := time.Now()
	r := newFaultRig(t)
	ld := newOpenLoad(r.fronts())
	loadCtx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); ld.run(loadCtx) }()
	defer func() { stopLoad(); <-loadDone }()
	time.Sleep(loadBefore) // steady load before the fault (not a synchronisation)
	what := fault(t, r)
	// Undone, the fault leaves every gateway accepting again.
	undone := time.Now()
	backErr := pollUntil(backWithin, 20*time.Millisecond, func() error {
		for i, at := range ld.lastAccepted() {
			if at.Before(undone) {
				return fmt.Errorf("gateway %d has answered no request sent since the fault was undone with 202", i)
			}
		}
		return nil
	})
	back := time.Since(undone)
	time.Sleep(loadAfter)
	stopLoad()
	<-loadDone
	stopped := time.Now()

	acked, statuses := ld.results()
	row := faultRow{name: name, acked: len(acked), statuses: statuses, fault: what, back: back}
	if backErr != nil {
		t.Errorf("%s: %v within %v", name, backErr, backWithin)
	}
	rd := r.reader
	ctx, cancel := context.WithTimeout(context.Background(), 2*settleWithin)
	defer cancel()
	first, readErrors := true, 0
	missing := func() int {
		counts, err := rd.read()
		if err != nil {
			if readErrors++; readErrors == 1 {
				t.Logf("reading the enriched stream through %s, %v after the load stopped: %v (%s)", r.obs.ConnectedServerName(),
					time.Since(stopped).Round(100*time.Millisecond), err, r.jsState())
			}
		}
		n := 0
		for id := range acked {
			if counts[id] == 0 {
				n++
			}
		}
		if first && err == nil {
			row.late, first = n, false
		}
		return n
	}
	// Every acknowledged quote stored, then the consumer drained: a batch
	// processed again after that would show as a second copy now.
	lastLog := time.Now()
	waitErr := pollUntil(settleWithin, 100*time.Millisecond, func() error {
		err := func() error {
			if n := missing(); n > 0 {
				return fmt.Errorf("%d acknowledged quotes not in the enriched stream", n)
			}
			if err := r.drained(ctx); err != nil {
				return fmt.Errorf("%w (%s)", err, r.jsState())
			}
			return nil
		}()
		if err != nil && time.Since(lastLog) > 2*time.Second {
			t.Logf("%v after the load stopped: %v", time.Since(stopped).Round(100*time.Millisecond), err)
			lastLog = time.Now()
		}
		return err
	})
	row.settled = time.Since(stopped)
	counts, err := rd.read()
	if err != nil {
		t.Errorf("reading the enriched stream: %v", err)
	}
	var lost, dups []string
	for id := range acked {
		if counts[id] > 0 {
			row.stored++
		} else {
			lost = append(lost, id)
		}
	}
	for id, n := range counts {
		if n > 1 {
			dups = append(dups, id)
		}
	}
	if readErrors > 1 {
		t.Logf("%d reads of the enriched stream failed", readErrors)
	}
	row.missing, row.duplicates = len(lost), len(dups)
	row.redelivered, row.deduped, row.retried = r.counters()
	row.took = time.Since(start)
	t.Logf("%s: %s; %d quotes acknowledged (requests by status %v), %d in the enriched stream, %d missing, %d stored more than once, %d late; %d batches redelivered, %d enriched events deduplicated, %d publishes retried; settled in %v",
		name, what, row.acked, statuses, row.stored, row.missing, row.duplicates, row.late, row.redelivered, row.deduped, row.retried,
		row.settled.Round(100*time.Millisecond))
	if waitErr != nil {
		t.Errorf("%s: not settled %v after the load stopped: %v", name, settleWithin, waitErr)
	}
	if row.acked == 0 {
		t.Errorf("%s: no quote was acknowledged", name)
	}
	if len(lost) > 0 {
		t.Errorf("%s: %d acknowledged quotes are not in the enriched stream, first %s", name, len(lost), lost[0])
	}
	if len(dups) > 0 {
		t.Errorf("%s: %d quotes are stored more than once in the enriched stream, first %s (%d times)", name, len(dups), dups[0], counts[dups[0]])
	}
	return row
}

// pollUntil calls f every interval until it returns nil or within has
// passed, and returns f's last error.
func pollUntil(within, every time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(every)
	}
}

// faultRig is a durable pipeline on an in-process cluster of three: two
// gateways, each behind a proxy that its clients use (so that killing one
// resets their connections), and two quotes workers. At the start the
// node leading the ingest stream holds the first gateway's and the first
// worker's connections: the victim of the node cases.
type faultRig struct {
	t        *testing.T
	c        *opstest.Cluster
	subjects schemas.Subjects
	log      *slog.Logger
	obs      *nats.Conn          // an observer's connection, to any node
	js       jetstream.JetStream // on obs
	victim   int
	reader   *enrichedReader
	gws      []*rigGateway
	wks      []*rigWorker   // stopped ones too
	gwSets   []*metrics.Set // of every gateway started
}

type rigGateway struct {
	front *opstest.Proxy
	node  int
	nc    *nats.Conn
	gw    *gateway.Server
	set   *metrics.Set
}

type rigWorker struct {
	node    int
	nc      *nats.Conn
	wk      *workers.Worker
	watcher *enrich.Watcher
	set     *metrics.Set
	dead    bool
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	r := &faultRig{t: t, c: opstest.RunCluster(t, 3), subjects: schemas.MustSubjects(""), log: slog.New(slog.DiscardHandler)}
	if os.Getenv("SLUICE_FAULTS_LOG") != "" {
		r.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	nc, err := nats.Connect(r.c.URLs(), nats.Name("faults-observer"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r.obs = nc
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := uploadRefdata(ctx, nc, r.subjects, enrich.Sample(), 3, r.log); err != nil {
		t.Fatal(err)
	}
	// The streams first, as `sluice streams apply --replicas 3` would, so
	// that the clients can be placed on the ingest stream's leader.
	if _, err := bus.Apply(ctx, r.js, r.subjects, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable), Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if r.reader, err = newEnrichedReader(ctx, r.js, r.subjects); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		leader, err := r.leader(ctx, bus.IngestStream(r.subjects))
		r.victim = r.c.Index(leader)
		return err
	})
	t.Cleanup(r.shutdown)
	r.startWorker(r.victim)
	r.startWorker((r.victim + 2) % 3)
	for _, node := range []int{r.victim, (r.victim + 1) % 3} {
		g := &rigGateway{front: opstest.NewProxy(t, ""), node: node}
		r.gws = append(r.gws, g)
		r.startGateway(g)
	}
	opstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		for i, g := range r.gws {
			if n := g.gw.GroupWorkers()["quotes"]; n < 2 {
				return fmt.Errorf("gateway %d counts %d quotes workers", i, n)
			}
		}
		return nil
	})
	return r
}

// jsState describes each node's JetStream: meta leader, current.
func (r *faultRig) jsState() string {
	var b strings.Builder
	for i := range 3 {
		s := r.c.Server(i)
		if s == nil {
			fmt.Fprintf(&b, "%s down; ", r.c.Name(i))
			continue
		}
		fmt.Fprintf(&b, "%s leader=%v current=%v routes=%d; ", r.c.Name(i), s.JetStreamIsLeader(), s.JetStreamIsCurrent(), s.NumRoutes())
	}
	return b.String()
}

// leader returns the name of the server leading stream name.
func (r *faultRig) leader(ctx context.Context, name string) (string, error) {
	st, err := r.js.Stream(ctx, name)
	if err != nil {
		return "", err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream %s has no leader", name)
	}
	return info.Cluster.Leader, nil
}

// startWorker starts a quotes worker connected to node (it learns the
// other nodes from it).
func (r *faultRig) startWorker(node int) *rigWorker {
	r.t.Helper()
	nc, err := connectNATS(r.c.URL(node), fmt.Sprintf("faults-worker-%d", len(r.wks)), r.log)
	if err != nil {
		r.t.Fatal(err)
	}
	w := &rigWorker{node: node, nc: nc, set: metrics.NewSet()}
	wf := workerFlags{delivery: bus.AllModes(bus.ModeDurable), ackWait: faultAckWait}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w.wk, w.watcher, err = startWorker(ctx, nc, r.subjects, "quotes", &wf, r.log, w.set)
	if err != nil {
		nc.Close()
		r.t.Fatal(err)
	}
	r.wks = append(r.wks, w)
	return w
}

// stop ends w as a killed process would: its connection is closed without
// a drain, so nothing it holds unacknowledged is acknowledged.
func (w *rigWorker) stop() {
	w.dead = true
	w.nc.Close()
}

// inflight returns the batches w is processing.
func (w *rigWorker) inflight() float64 {
	return w.set.GetOrCreateGauge(`sluice_worker_inflight_batches{group="quotes"}`, nil).Get()
}

// startGateway starts a gateway connected to g.node and points g's proxy
// at it.
func (r *faultRig) startGateway(g *rigGateway) {
	r.t.Helper()
	nc, err := connectNATS(r.c.URL(g.node), "faults-gateway", r.log)
	if err != nil {
		r.t.Fatal(err)
	}
	set := metrics.NewSet()
	o := gateway.Options{Conn: nc, Subjects: r.subjects, Listen: "127.0.0.1:0", Logger: r.log, Metrics: set,
		Delivery: bus.AllModes(bus.ModeDurable)}
	o.Durable.Streams.Replicas = 3
	gw, err := gateway.New(o)
	if err == nil {
		err = gw.Start()
	}
	if err != nil {
		nc.Close()
		r.t.Fatal(err)
	}
	g.nc, g.gw, g.set = nc, gw, set
	r.gwSets = append(r.gwSets, set)
	g.front.SetTarget(gw.Addr())
	g.front.Refuse(false)
}

// kill ends g as a killed process would: its NATS connection closes
// without a flush (batches awaiting their ack are never answered 202) and
// its clients' connections are reset.
func (g *rigGateway) kill() {
	g.front.Cut()
	g.nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = g.gw.Shutdown(ctx) // releases the listener; nothing is left to drain
}

// counters sums the workers' redeliveries and deduplicated enriched
// events, and the gateways' retried publishes, over every process started.
func (r *faultRig) counters() (redelivered, deduped, retried int) {
	for _, w := range r.wks {
		redelivered += int(w.set.GetOrCreateCounter(`sluice_worker_redeliveries_total{group="quotes"}`).Get())
		deduped += int(w.set.GetOrCreateCounter(`sluice_worker_duplicates_total{group="quotes"}`).Get())
	}
	for _, set := range r.gwSets {
		retried += int(set.GetOrCreateGauge(`sluice_gateway_publish_retries_total`, nil).Get())
	}
	return redelivered, deduped, retried
}

// fronts returns the addresses the clients use, one per gateway.
func (r *faultRig) fronts() []string {
	var out []string
	for _, g := range r.gws {
		out = append(out, g.front.Addr())
	}
	return out
}

// drained reports nil once the quotes consumer has nothing pending and
// nothing awaiting its ack.
func (r *faultRig) drained(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := r.js.Consumer(cctx, bus.IngestStream(r.subjects), "quotes")
	if err != nil {
		return err
	}
	info, err := c.Info(cctx)
	if err != nil {
		return err
	}
	if info.NumPending > 0 || info.NumAckPending > 0 {
		return fmt.Errorf("consumer quotes: %d pending, %d awaiting ack", info.NumPending, info.NumAckPending)
	}
	return nil
}

// shutdown drains what still lives: gateways, then workers.
func (r *faultRig) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, g := range r.gws {
		if g.gw != nil {
			if err := g.gw.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
				r.t.Logf("gateway shutdown: %v", err)
			}
			g.nc.Close()
		}
	}
	for _, w := range r.wks {
		if !w.dead {
			if err := w.wk.Shutdown(ctx); err != nil {
				r.t.Logf("worker shutdown: %v", err)
			}
		}
		_ = w.watcher.Stop()
		w.nc.Close()
	}
}

// faultWorkerStop stops the first quotes worker abruptly while it
// processes a batch, and starts another worker on another node a second
// later: the batches it held come back to the group after the ack wait.
func faultWorkerStop(t *testing.T, r *faultRig) string {
	w := r.wks[0]
	var inflight float64
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if inflight = w.inflight(); inflight > 0 {
			break
		}
	}
	w.stop()
	time.Sleep(time.Second) // the group runs on one worker for a while
	r.startWorker((w.node + 1) % 3)
	return fmt.Sprintf("worker on %s stopped with %v batches in flight", r.c.Name(w.node), inflight)
}

// faultNodeRestart shuts down the node leading the ingest stream (and
// holding a gateway's and a worker's connections) for 5 s, then starts it
// again with its store, and waits until it is current again.
func faultNodeRestart(t *testing.T, r *faultRig) string {
	what := r.describeVictim()
	r.c.Stop(r.victim)
	time.Sleep(5 * time.Second)
	r.c.Start(r.victim)
	r.c.WaitReady(30 * time.Second)
	return "restarted " + what
}

// faultNodePartition cuts the node leading the ingest stream off the
// other two for 8 s (its routes closed; its clients stay connected to it
// and get 503 or no answer, never 202), then heals the cut.
func faultNodePartition(t *testing.T, r *faultRig) string {
	what := r.describeVictim()
	r.c.Partition(r.victim)
	time.Sleep(8 * time.Second)
	r.c.Heal()
	r.c.WaitReady(30 * time.Second)
	return "partitioned " + what
}

// describeVictim names the victim node and what it leads now.
func (r *faultRig) describeVictim() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var leads []string
	for _, s := range []string{bus.IngestStream(r.subjects), bus.EnrichedStream(r.subjects)} {
		if l, err := r.leader(ctx, s); err == nil && l == r.c.Name(r.victim) {
			leads = append(leads, s)
		}
	}
	return fmt.Sprintf("%s (leader of %v, gateway 0 and worker 0 on it)", r.c.Name(r.victim), leads)
}

// faultGatewayKill kills the second gateway under the load, while a
// batch awaits its ack (or after 3 s of trying; the table says), and
// starts a new one (a new publisher id) on the same node 2 s later: what it
// acknowledged is stored; what it had not answered was never promised.
func faultGatewayKill(t *testing.T, r *faultRig) string {
	g := r.gws[1]
	unacked := g.set.GetOrCreateGauge(`sluice_gateway_publish_unacked_batches`, nil)
	var pending float64
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Microsecond) {
		if pending = unacked.Get(); pending > 0 {
			break
		}
	}
	g.kill()
	time.Sleep(2 * time.Second)
	r.startGateway(g)
	return fmt.Sprintf("gateway on %s killed with %v batches awaiting their ack", r.c.Name(g.node), pending)
}

// openLoad posts quotes open loop: a request every interval whatever the
// answers, to the targets in turn, at most 32 in flight to each (a tick
// whose target has none free is skipped: a gateway that hangs does not
// slow the load on the other).
type openLoad struct {
	client  *http.Client
	targets []string

	mu       sync.Mutex
	acked    map[string]int // id: times answered 202
	statuses map[int]int
	// accepted is, per target, when the last request it answered 202 was
	// sent.
	accepted []time.Time
}

func newOpenLoad(targets []string) *openLoad {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &openLoad{client: &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 20 * time.Second},
		targets: targets, acked: map[string]int{}, statuses: map[int]int{}, accepted: make([]time.Time, len(targets))}
}

// run posts until ctx ends, then waits for the requests in flight.
func (l *openLoad) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make([]chan struct{}, len(l.targets))
	for i := range slots {
		slots[i] = make(chan struct{}, 32)
	}
	tick := time.NewTicker(loadInterval)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		slot := slots[n%len(slots)]
		select {
		case slot <- struct{}{}:
		default:
			l.count(-1, nil, 0, time.Time{})
			continue
		}
		wg.Go(func() {
			defer func() { <-slot }()
			l.send(n)
		})
	}
}

// faultSymbols are sample instruments; each keeps its price, so that no
// quote is out of its band.
var faultSymbols = []string{"AAPL", "MSFT", "NVDA", "SPY"}

func (l *openLoad) send(n int) {
	var body strings.Builder
	for i := range loadPerRequest {
		body.WriteString(quoteJSON(faultSymbols[(n+i)%len(faultSymbols)], 100, 100.01))
		body.WriteByte('\n')
	}
	target := n % len(l.targets)
	url := "http://" + l.targets[target] + "/v1/events/quote"
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body.String()))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	at := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		l.count(0, nil, target, at)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		l.count(0, nil, target, at)
		return
	}
	var ids []string
	if resp.StatusCode == http.StatusAccepted {
		var a struct {
			IDs []string `json:"ids"`
		}
		if err := json.Unmarshal(b, &a); err != nil || len(a.IDs) != loadPerRequest {
			panic(fmt.Sprintf("202 body %q: %v", b, err))
		}
		ids = a.IDs
	}
	l.count(resp.StatusCode, ids, target, at)
}

// count records one request's status (-1: a skipped tick), the ids it
// acknowledged, and, answered 202, when it was sent to target.
func (l *openLoad) count(status int, ids []string, target int, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[status]++
	if status == http.StatusAccepted && at.After(l.accepted[target]) {
		l.accepted[target] = at
	}
	for _, id := range ids {
		l.acked[id]++
	}
}

// results returns the acknowledged ids and the requests by status.
func (l *openLoad) results() (map[string]int, map[int]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.acked), maps.Clone(l.statuses)
}

// lastAccepted returns, per target, when the last request it answered
// 202 was sent.
func (l *openLoad) lastAccepted() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.accepted)
}

// enrichedReader reads the enriched stream's quotes through a durable
// consumer of its own, created before the fault: reading needs no
// JetStream meta leader (a cluster may have none for a while after a cut
// heals). It counts each id once per stream sequence, so that a message
// delivered to it again (an ack lost) is not a duplicate.
type enrichedReader struct {
	cons  jetstream.Consumer
	bySeq map[uint64]string
}

func newEnrichedReader(ctx context.Context, js jetstream.JetStream, s schemas.Subjects) (*enrichedReader, error) {
	filter, err := s.EnrichedFilter("quote")
	if err != nil {
		return nil, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.EnrichedStream(s), jetstream.ConsumerConfig{Durable: "faults-observer",
		FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, MaxAckPending: 10_000})
	if err != nil {
		return nil, fmt.Errorf("observer consumer: %w", err)
	}
	return &enrichedReader{cons: cons, bySeq: map[uint64]string{}}, nil
}

// read fetches what the stream stored since the last read, until a fetch
// comes back empty, and returns how many sequences hold each id.
func (r *enrichedReader) read() (map[string]int, error) {
	err := r.fetch()
	counts := make(map[string]int, len(r.bySeq))
	for _, id := range r.bySeq {
		counts[id]++
	}
	return counts, err
}

func (r *enrichedReader) fetch() error {
	for {
		batch, err := r.cons.Fetch(1000, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return fmt.Errorf("fetching: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			var en schemas.Enriched
			rd := schemas.NewReader(m.Data())
			if err := en.DecodeMsgpack(&rd); err != nil || en.ID == "" {
				return fmt.Errorf("enriched message %d: %v", meta.Sequence.Stream, err)
			}
			r.bySeq[meta.Sequence.Stream] = en.ID
			_ = m.Ack()
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("fetching: %w", err)
		}
		if got == 0 {
			return nil
		}
	}
}
