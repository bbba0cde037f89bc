package composetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/ops/opstest"
)

// TestCompose runs the stack of docker-compose.yml from nothing to nothing,
// one step after another on the same stack; a failed step stops the test
// (the clean-up still takes the stack down). The stack starts in its
// default, durable delivery, where the fault cases (faults_test.go) find
// no acknowledged quote lost; then the gateways and workers are recreated
// in core delivery, where the worker and node loss steps measure and bound
// what core NATS loses. Before it goes down, the stack gets
// TestSecureCompose's checks of the NATS users' permissions (SecureRoles).
func TestCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("compose test skipped in -short mode: it builds images and starts containers")
	}
	start := time.Now()
	s := newStack(t)
	steps := []struct {
		name string
		run  func(*testing.T, *stack)
	}{
		{"UpFromNothing", testUp},
		{"EnrichedThroughEachGateway", testEnriched},
		{"ScaleQuotes", testScale},
		{"Faults", testFaults},
		{"CoreDelivery", testCoreDelivery},
		{"WorkerLoss", testWorkerLoss},
		{"NATSNodeLoss", testNodeLoss},
		{"SecureRoles", testSecureRoles},
		{"Down", testDown},
	}
	for _, step := range steps {
		t0 := time.Now()
		ok := t.Run(step.name, func(t *testing.T) { step.run(t, s) })
		t.Logf("step %s took %v", step.name, time.Since(t0).Round(100*time.Millisecond))
		if !ok {
			t.Fatalf("step %s failed; the steps after it need what it does", step.name)
		}
	}
	t.Logf("compose test took %v", time.Since(start).Round(time.Second))
}

// stackSize is the healthy containers per service of the stack as started.
func stackSize(quotes int) map[string]int {
	return map[string]int{"nats-1": 1, "nats-2": 1, "nats-3": 1, "gateway-a": 1, "gateway-b": 1, "quotes": quotes, "trades": 1}
}

// testUp builds the images, starts the stack and waits for every health
// check and for the reference data to be loaded.
func testUp(t *testing.T, s *stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	msg, err := s.buildImages(ctx)
	if err != nil {
		t.Fatalf("docker/build.sh: %v", err)
	}
	t.Log(msg)

	t0 := time.Now()
	if _, err := s.composeCmd(ctx, "up", "-d"); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 2*time.Minute, 500*time.Millisecond, func() error {
		return s.checkReady(ctx, stackSize(1), "refdata", "natsauth")
	})
	t.Logf("stack healthy %v after `up -d` started", time.Since(t0).Round(100*time.Millisecond))

	// What a user reaches on the host: the gateways' ops listeners and the
	// NATS monitoring ports, on 127.0.0.1.
	for _, p := range []int{s.ports.gatewayAOps, s.ports.gatewayBOps} {
		if err := getOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", p)); err != nil {
			t.Error(err)
		}
	}
	for i := range nodes {
		if err := getOK(fmt.Sprintf("http://127.0.0.1:%d/healthz", s.ports.natsMonitor[i])); err != nil {
			t.Error(err)
		}
	}
}

// testEnriched publishes a quote through each gateway over h2c with
// Prefer: return=representation and expects it enriched; `sluice sub
// --count 2` on the host, against the stack's NATS, prints both and exits.
func testEnriched(t *testing.T, s *stack) {
	c := newH2CClient()
	sub := startSub(t, s, "quote", 2)
	opstest.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		if !strings.Contains(sub.stderrText(), "msg=subscribed") {
			return fmt.Errorf("sluice sub has not subscribed; its stderr:\n%s", sub.stderrText())
		}
		return nil
	})
	// Its subscription reaches the other nodes asynchronously.
	opstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		return s.interestEverywhere("sluice.enriched.quote.>", "sluice.enriched.quote.AAPL")
	})

	var ids []string
	for i, gw := range s.gateways() {
		body := fmt.Appendf(nil, `{"symbol":%q,"bid":189.52,"ask":189.55,"bid_size":300,"ask_size":200,"venue":"XNAS"}`, symbols[i])
		r, err := postQuotes(context.Background(), c, gw, body, true)
		if err != nil {
			t.Fatalf("%s: %v", gw, err)
		}
		if r.status != http.StatusOK || r.proto != 2 {
			t.Fatalf("%s: status %d over HTTP/%d, want 200 over h2c: %s", gw, r.status, r.proto, r.body)
		}
		var ev struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				Symbol string   `json:"symbol"`
				Mid    *float64 `json:"mid"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatalf("%s: decoding %s: %v", gw, r.body, err)
		}
		if ev.Data.Mid == nil || math.Abs(*ev.Data.Mid-189.535) > 1e-9 || ev.Data.Symbol != symbols[i] || ev.ID == "" {
			t.Fatalf("%s: not enriched as expected (want data.mid 189.535 for %s): %s", gw, symbols[i], r.body)
		}
		t.Logf("%s: 200 over h2c, %s %s mid %v", gw, ev.Type, ev.ID, *ev.Data.Mid)
		ids = append(ids, ev.ID)
	}

	code, exited := sub.wait(15 * time.Second)
	if !exited {
		t.Fatalf("sluice sub --count 2 has not exited 15s after both quotes were enriched; stderr:\n%s", sub.stderrText())
	}
	if code != 0 {
		t.Errorf("sluice sub exited %d, want 0; stderr:\n%s", code, sub.stderrText())
	}
	for _, id := range ids {
		ev := sub.event(id)
		data, _ := ev["data"].(map[string]any)
		if _, ok := data["mid"].(float64); !ok {
			t.Errorf("sluice sub did not print %s with data.mid; it printed %v", id, ev)
		}
	}
}

// testScale scales the quotes group to three workers, streams 10,000 quotes
// through both gateways, and checks that each was enriched exactly once and
// that every worker of the group did part of the work (its own metrics).
func testScale(t *testing.T, s *stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const total, perRequest, senders = 10_000, 100, 4

	if _, err := s.composeCmd(ctx, "up", "-d", "--no-deps", "--scale", "quotes=3", "quotes"); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 90*time.Second, 500*time.Millisecond, func() error {
		return s.checkReady(ctx, stackSize(3), "refdata")
	})
	workers, err := s.running(ctx, "quotes")
	if err != nil {
		t.Fatal(err)
	}
	ports := make([]int, len(workers))
	for i, w := range workers {
		if ports[i], err = s.publishedPort(ctx, w.ID, "9091/tcp"); err != nil {
			t.Fatal(err)
		}
	}

	c := newH2CClient()
	tp := newTap(t, s, 0, 1, 2)
	tp.prime(t, c, s.gateways())
	before := make([]float64, len(workers))
	for i, p := range ports {
		m, err := scrape(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		before[i] = m[quotesEnriched]
	}

	t0 := time.Now()
	sent := sendAll(t, c, s.gateways(), total, perRequest, senders)
	if len(sent) != total {
		t.Fatalf("gateways accepted %d distinct ids, want %d", len(sent), total)
	}
	opstest.CheckFor(t, time.Minute, 100*time.Millisecond, func() error {
		if miss := tp.missing(sent); len(miss) > 0 {
			return fmt.Errorf("%d of %d quotes not enriched, first %s", len(miss), total, miss[0])
		}
		return nil
	})
	t.Logf("%d quotes accepted and enriched in %v", total, time.Since(t0).Round(time.Millisecond))
	if dupE, dupP := tp.duplicates(sent); len(dupE)+len(dupP) > 0 {
		t.Errorf("%d quotes enriched more than once, %d published in more than one batch", len(dupE), len(dupP))
	}
	if err := tp.check(); err != nil {
		t.Error(err)
	}

	// Each worker's own metrics show its share; together they add up to
	// the stream (a counter may trail its publish by a moment).
	var deltas []float64
	opstest.CheckFor(t, 10*time.Second, 200*time.Millisecond, func() error {
		deltas = deltas[:0]
		sum := 0.0
		for i, p := range ports {
			m, err := scrape(ctx, p)
			if err != nil {
				return err
			}
			deltas = append(deltas, m[quotesEnriched]-before[i])
			sum += deltas[len(deltas)-1]
		}
		if sum != total {
			return fmt.Errorf("the workers' %s add up to %v, want %d", quotesEnriched, sum, total)
		}
		return nil
	})
	for i, d := range deltas {
		t.Logf("%s enriched %v quotes", workers[i].Name, d)
		if d == 0 {
			t.Errorf("%s did no work", workers[i].Name)
		}
	}
}

// sendAll sends total quotes in requests of perRequest through the gateways
// in turn from senders goroutines, and returns the accepted ids. Like any
// polite client it retries a request shed with 503 or 429 after its
// Retry-After (at most 1 s, 30 times); every request must end in 202.
func sendAll(t *testing.T, c *http.Client, gateways []string, total, perRequest, senders int) map[string]time.Time {
	t.Helper()
	var mu sync.Mutex
	sent := make(map[string]time.Time, total)
	var failures []string
	retries := 0
	var wg sync.WaitGroup
	next := make(chan int)
	for range senders {
		wg.Go(func() {
			for n := range next {
				ids, tries, err := sendPolitely(c, gateways[n%len(gateways)], quotesJSON(n*perRequest, perRequest))
				now := time.Now()
				mu.Lock()
				retries += tries
				if err != nil {
					failures = append(failures, err.Error())
				}
				for _, id := range ids {
					sent[id] = now
				}
				mu.Unlock()
			}
		})
	}
	for n := range total / perRequest {
		next <- n
	}
	close(next)
	wg.Wait()
	t.Logf("%d requests of %d quotes from %d senders; %d retries after 503/429", total/perRequest, perRequest, senders, retries)
	if len(failures) > 0 {
		t.Fatalf("%d requests failed, first: %s", len(failures), failures[0])
	}
	return sent
}

// sendPolitely posts body until it is accepted, retrying 503 and 429, and
// returns the accepted ids and the number of retries.
func sendPolitely(c *http.Client, gateway string, body []byte) ([]string, int, error) {
	for try := 0; ; try++ {
		r, err := postQuotes(context.Background(), c, gateway, body, false)
		switch {
		case err != nil:
			return nil, try, err
		case r.status == http.StatusAccepted:
			ids, err := acceptedIDs(r.body)
			return ids, try, err
		case (r.status == http.StatusServiceUnavailable || r.status == http.StatusTooManyRequests) && try < 30:
			time.Sleep(r.backoff(time.Second))
		default:
			return nil, try, fmt.Errorf("status %d after %d retries: %s", r.status, try, r.body)
		}
	}
}

// testCoreDelivery recreates the gateways and workers of the stack in core
// delivery (SLUICE_COMPOSE_DELIVERY=core), keeping three quotes workers and
// the NATS cluster, for the steps that bound core NATS's losses.
func testCoreDelivery(t *testing.T, s *stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The streams must stop capturing the core types' subjects first (a
	// component refuses to start otherwise), as an operator would switch:
	// stop the pipeline, change the streams, start it in the new mode.
	services := []string{"gateway-a", "gateway-b", "quotes", "trades"}
	if _, err := s.composeCmd(ctx, append([]string{"stop", "-t", "15"}, services...)...); err != nil {
		t.Fatal(err)
	}
	// With no durable type left, the streams go (sluice streams apply
	// serves durable types alone and says so).
	nc, err := nats.Connect(s.natsURLs(0, 1, 2), append(s.natsOptions(t, "operator"),
		nats.Name("sluice-composetest-admin"), nats.IgnoreDiscoveredServers())...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sluice-ingest", "sluice-enriched", "sluice-dlq"} {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Fatalf("deleting stream %s: %v", name, err)
		}
	}
	s.env = append(s.env, "SLUICE_COMPOSE_DELIVERY=core")
	if _, err := s.composeCmd(ctx, append([]string{"up", "-d", "--no-deps", "--scale", "quotes=3"}, services...)...); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 90*time.Second, 500*time.Millisecond, func() error {
		if err := s.checkReady(ctx, stackSize(3), "refdata"); err != nil {
			return err
		}
		for _, svc := range []string{"gateway-a", "quotes"} {
			cs, err := s.running(ctx, svc)
			if err != nil {
				return err
			}
			for _, c := range cs {
				out, err := s.docker(ctx, "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", c.ID)
				if err != nil {
					return err
				}
				if !strings.Contains(out, "SLUICE_DELIVERY=core\n") {
					return fmt.Errorf("%s does not run with SLUICE_DELIVERY=core yet", c.Name)
				}
			}
		}
		return nil
	})
}

// testDown takes the stack down with its volumes and checks that nothing
// of the project is left: no container, network or volume.
func testDown(t *testing.T, s *stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.down(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := s.leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("down -v left %s", strings.Join(left, ", "))
	}
	for _, p := range []int{s.ports.gatewayA, s.ports.gatewayB, s.ports.nats[0]} {
		if err := getOK(fmt.Sprintf("http://127.0.0.1:%d/", p)); err == nil || !isRefused(err) {
			t.Errorf("127.0.0.1:%d still answers after down: %v", p, err)
		}
	}
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
