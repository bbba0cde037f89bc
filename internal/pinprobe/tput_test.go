package pinprobe

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/ops/opstest"
)

// batches of `per` events; the handler stores each event (async publish, waits all acks) then acks the batch.
func runTput(t *testing.T, parts, maxAck, workers, batches, per int) {
	_, url := opstest.RunNATS(t)
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"in.*"}, Retention: jetstream.WorkQueuePolicy})
	js.CreateStream(ctx, jetstream.StreamConfig{Name: "E", Subjects: []string{"en.>"}})
	for p := 0; p < parts; p++ {
		js.CreateOrUpdateConsumer(ctx, "S", jetstream.ConsumerConfig{Durable: fmt.Sprintf("g-p%d", p), FilterSubject: fmt.Sprintf("in.%d", p),
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: maxAck})
	}
	payload := make([]byte, 200)
	for i := 0; i < batches; i++ {
		js.PublishAsync(fmt.Sprintf("in.%d", i%parts), payload)
	}
	<-js.PublishAsyncComplete()
	var done atomic.Int64
	start := time.Now()
	for w := 0; w < workers; w++ {
		c, _ := nats.Connect(url)
		defer c.Close()
		wjs, _ := jetstream.New(c)
		for p := 0; p < parts; p++ {
			cons, _ := wjs.Consumer(ctx, "S", fmt.Sprintf("g-p%d", p))
			sem := make(chan struct{}, 4)
			cons.Consume(func(m jetstream.Msg) {
				sem <- struct{}{}
				go func() {
					defer func() { <-sem }()
					futs := make([]jetstream.PubAckFuture, 0, per)
					for e := 0; e < per; e++ {
						f, _ := wjs.PublishAsync(fmt.Sprintf("en.%d.s%d", p, e), payload)
						futs = append(futs, f)
					}
					for _, f := range futs {
						<-f.Ok()
					}
					m.Ack()
					done.Add(1)
				}()
			}, jetstream.PullMaxMessages(8), jetstream.PullExpiry(time.Second))
		}
	}
	for done.Load() < int64(batches) && time.Since(start) < 60*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	t.Logf("partitions=%d maxAckPending=%d workers=%d events/batch=%d: %d batches in %v = %.0f batches/s, %.0f events/s",
		parts, maxAck, workers, per, done.Load(), el.Round(time.Millisecond), float64(done.Load())/el.Seconds(), float64(done.Load()*int64(per))/el.Seconds())
}

func TestTput(t *testing.T) {
	runTput(t, 8, 1, 3, 4000*8, 12)
	runTput(t, 1, 1000, 3, 4000*8, 12)
	runTput(t, 1, 1000, 3, 4000, 100) // today: 1 consumer, ~100 events/batch at 100k/s
	runTput(t, 8, 1, 3, 4000*8, 12)   // P=8: 8x the batches, 12 events each
	runTput(t, 1, 1000, 3, 4000, 12)  // today at the small batch size
	runTput(t, 8, 1, 3, 4000, 100)
}
