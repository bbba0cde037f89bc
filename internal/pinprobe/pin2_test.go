package pinprobe

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/ops/opstest"
)

type probe struct {
	t     *testing.T
	url   string
	js    jetstream.JetStream
	mu    sync.Mutex
	owner map[int]map[int]int
	last  map[int]time.Time
	conns []*nats.Conn
	block map[int]bool // worker -> hold messages unacked
	inflt map[int]int  // partition -> in-flight count
	maxIn map[int]int
}

func setup(t *testing.T, pinned bool, ttl, ackWait time.Duration) *probe {
	_, url := opstest.RunNATS(t)
	nc, _ := nats.Connect(url)
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"in.*"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	for p := 0; p < P; p++ {
		cfg := jetstream.ConsumerConfig{Durable: fmt.Sprintf("g-p%d", p), FilterSubject: fmt.Sprintf("in.%d", p),
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1, AckWait: ackWait}
		if pinned {
			cfg.PriorityPolicy, cfg.PriorityGroups, cfg.PinnedTTL = jetstream.PriorityPolicyPinned, []string{"sluice"}, ttl
		}
		if _, err := js.CreateOrUpdateConsumer(ctx, "S", cfg); err != nil {
			t.Fatal(err)
		}
	}
	return &probe{t: t, url: url, js: js, owner: map[int]map[int]int{}, last: map[int]time.Time{}, block: map[int]bool{}, inflt: map[int]int{}, maxIn: map[int]int{}}
}

func (pr *probe) worker(w int, pinned bool, expiry time.Duration, work time.Duration) {
	c, _ := nats.Connect(pr.url)
	pr.conns = append(pr.conns, c)
	wjs, _ := jetstream.New(c)
	for p := 0; p < P; p++ {
		cons, err := wjs.Consumer(context.Background(), "S", fmt.Sprintf("g-p%d", p))
		if err != nil {
			pr.t.Fatal(err)
		}
		p := p
		opts := []jetstream.PullConsumeOpt{jetstream.PullExpiry(expiry), jetstream.PullHeartbeat(expiry / 2), jetstream.PullMaxMessages(2)}
		if pinned {
			opts = append(opts, jetstream.PullPriorityGroup("sluice"))
		}
		_, err = cons.Consume(func(m jetstream.Msg) {
			pr.mu.Lock()
			if pr.owner[p] == nil {
				pr.owner[p] = map[int]int{}
			}
			pr.owner[p][w]++
			pr.last[p] = time.Now()
			pr.inflt[p]++
			pr.maxIn[p] = max(pr.maxIn[p], pr.inflt[p])
			blk := pr.block[w]
			pr.mu.Unlock()
			if blk {
				return // never acked: the worker "dies" holding it
			}
			time.Sleep(work)
			pr.mu.Lock()
			pr.inflt[p]--
			pr.mu.Unlock()
			m.Ack()
		}, opts...)
		if err != nil {
			pr.t.Fatal(err)
		}
	}
}

func (pr *probe) pub(n int) {
	for i := 0; i < n; i++ {
		for p := 0; p < P; p++ {
			if _, err := pr.js.Publish(context.Background(), fmt.Sprintf("in.%d", p), []byte("x")); err != nil {
				pr.t.Fatal(err)
			}
		}
	}
}

func (pr *probe) snap(reset bool) string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	s := fmt.Sprint(pr.owner)
	if reset {
		pr.owner = map[int]map[int]int{}
	}
	return s
}

// Pins with a pull expiry shorter than PinnedTTL: stable while idle?
func TestPinStableShortExpiry(t *testing.T) {
	pr := setup(t, true, 3*time.Second, 30*time.Second)
	for w := 0; w < 3; w++ {
		pr.worker(w, true, time.Second, 0)
	}
	time.Sleep(300 * time.Millisecond)
	pr.pub(20)
	time.Sleep(300 * time.Millisecond)
	t.Logf("first: %s", pr.snap(true))
	time.Sleep(8 * time.Second)
	pr.pub(20)
	time.Sleep(300 * time.Millisecond)
	t.Logf("after 8s idle: %s", pr.snap(true))
	// Unpin 5 partitions: where do they go?
	for p := 3; p < P; p++ {
		st, _ := pr.js.Stream(context.Background(), "S")
		if err := st.UnpinConsumer(context.Background(), fmt.Sprintf("g-p%d", p), "sluice"); err != nil {
			t.Logf("unpin: %v", err)
		}
	}
	pr.pub(20)
	time.Sleep(300 * time.Millisecond)
	t.Logf("after unpin 3..7: %s", pr.snap(true))
}

// Unpinned: 3 workers pull all 8 partitions, MaxAckPending 1: spread and in-flight per partition.
func TestUnpinnedSpread(t *testing.T) {
	pr := setup(t, false, 0, 30*time.Second)
	for w := 0; w < 3; w++ {
		pr.worker(w, false, time.Second, 2*time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	pr.pub(100)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pr.mu.Lock()
		n := 0
		for _, m := range pr.owner {
			for _, c := range m {
				n += c
			}
		}
		pr.mu.Unlock()
		if n == 800 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("unpinned (%v): %s max in flight per partition %v", time.Since(start), pr.snap(true), pr.maxIn)
}

// Kill a pinned worker while it holds an unacked batch: when does its partition deliver again?
func TestKillHolding(t *testing.T) {
	pr := setup(t, true, 2*time.Second, 5*time.Second)
	pr.worker(0, true, time.Second, 0)
	time.Sleep(200 * time.Millisecond)
	pr.worker(1, true, time.Second, 0)
	time.Sleep(300 * time.Millisecond)
	pr.mu.Lock()
	pr.block[0] = true
	pr.mu.Unlock()
	pr.pub(1)
	time.Sleep(300 * time.Millisecond)
	t.Logf("held: %s", pr.snap(true))
	killed := time.Now()
	pr.conns[0].Close()
	pr.pub(1)
	deadline := time.Now().Add(20 * time.Second)
	got := time.Duration(0)
	for time.Now().Before(deadline) {
		pr.mu.Lock()
		if pr.owner[0][1] > 0 {
			got = pr.last[0].Sub(killed)
		}
		pr.mu.Unlock()
		if got > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("partition 0 delivered again to worker 1 after %v (AckWait 5s, PinnedTTL 2s): %s", got, pr.snap(false))
}

func TestKillHoldingUnpinned(t *testing.T) {
	pr := setup(t, false, 0, 5*time.Second)
	pr.worker(0, false, time.Second, 0)
	time.Sleep(200 * time.Millisecond)
	pr.mu.Lock()
	pr.block[0] = true
	pr.mu.Unlock()
	pr.pub(1)
	time.Sleep(300 * time.Millisecond)
	pr.worker(1, false, time.Second, 0)
	time.Sleep(300 * time.Millisecond)
	t.Logf("held by 0: %s", pr.snap(true))
	killed := time.Now()
	pr.conns[0].Close()
	pr.pub(1)
	deadline := time.Now().Add(20 * time.Second)
	var got time.Duration
	for time.Now().Before(deadline) && got == 0 {
		pr.mu.Lock()
		if pr.owner[0][1] > 0 {
			got = pr.last[0].Sub(killed)
		}
		pr.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("unpinned: partition 0 delivered again to worker 1 after %v (AckWait 5s): %s", got, pr.snap(false))
}
