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

const P = 8

func TestPinSpread(t *testing.T) {
	_, url := opstest.RunNATS(t)
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"in.*"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	for p := 0; p < P; p++ {
		_, err := js.CreateOrUpdateConsumer(ctx, "S", jetstream.ConsumerConfig{Durable: fmt.Sprintf("g-p%d", p), FilterSubject: fmt.Sprintf("in.%d", p),
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1, PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{"sluice"}, PinnedTTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	owner := map[int]map[int]int{} // partition -> worker -> count
	last := map[int]time.Time{}
	lastOwner := map[int]int{}
	conns := make([]*nats.Conn, 3)
	for w := 0; w < 3; w++ {
		c, _ := nats.Connect(url)
		conns[w] = c
		wjs, _ := jetstream.New(c)
		for p := 0; p < P; p++ {
			cons, err := wjs.Consumer(ctx, "S", fmt.Sprintf("g-p%d", p))
			if err != nil {
				t.Fatal(err)
			}
			w, p := w, p
			_, err = cons.Consume(func(m jetstream.Msg) {
				mu.Lock()
				if owner[p] == nil {
					owner[p] = map[int]int{}
				}
				owner[p][w]++
				last[p] = time.Now()
				lastOwner[p] = w
				mu.Unlock()
				m.Ack()
			}, jetstream.PullPriorityGroup("sluice"), jetstream.PullExpiry(10*time.Second), jetstream.PullHeartbeat(2*time.Second), jetstream.PullMaxMessages(4))
			if err != nil {
				t.Fatal(err)
			}
		}
		if w == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	pub := func(n int) {
		for i := 0; i < n; i++ {
			for p := 0; p < P; p++ {
				if _, err := js.Publish(ctx, fmt.Sprintf("in.%d", p), []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	pub(50)
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	t.Logf("phase1 owners: %v", owner)
	mu.Unlock()
	// idle 5s (> PinnedTTL) then publish: do pins survive idle Consume?
	time.Sleep(5 * time.Second)
	mu.Lock()
	owner = map[int]map[int]int{}
	mu.Unlock()
	pub(50)
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	t.Logf("after idle owners: %v", owner)
	victim := lastOwner[0]
	mu.Unlock()
	for p := 0; p < P; p++ {
		cons, _ := js.Consumer(ctx, "S", fmt.Sprintf("g-p%d", p))
		ci := cons.CachedInfo()
		t.Logf("p%d info priority groups: %+v", p, ci.PriorityGroups)
	}
	// kill owner of p0 hard
	killed := time.Now()
	conns[victim].Close()
	mu.Lock()
	owner = map[int]map[int]int{}
	mu.Unlock()
	done := time.Now().Add(30 * time.Second)
	moved := map[int]time.Duration{}
	for time.Now().Before(done) && len(moved) < P {
		pub(1)
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		for p := 0; p < P; p++ {
			if _, ok := moved[p]; !ok && last[p].After(killed) {
				moved[p] = last[p].Sub(killed)
			}
		}
		mu.Unlock()
	}
	mu.Lock()
	t.Logf("victim %d; after kill owners: %v; first delivery after kill: %v", victim, owner, moved)
	mu.Unlock()
}
