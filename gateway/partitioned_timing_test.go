package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
)

// BenchmarkBatcherPartitions is BenchmarkDurableQuoteJSONParallel over 40
// symbols with 1, 4 and 8 partitions (default batch options): a partition
// fills its batch P times slower, so batches are smaller and the stream
// stores more of them. It reports events per stored batch and requests/s.
//
//	go test -run='^$' -bench=BatcherPartitions -count=3 ./gateway/
func BenchmarkBatcherPartitions(b *testing.B) {
	bodies := make([][]byte, 40)
	for i := range bodies {
		bodies[i] = []byte(quoteJSONBody(fmt.Sprintf("S%02d", i)))
	}
	for _, p := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("p%d", p), func(b *testing.B) {
			s := newPartitionedBenchServer(b, p)
			b.SetBytes(int64(len(bodies[0])))
			b.SetParallelism(16)
			p := startPerEvent(b, 1)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				br := newBenchRequest("application/json", nil)
				for i := 0; pb.Next(); i++ {
					br.data = bodies[i%len(bodies)]
					br.serve(b, s)
				}
			})
			elapsed := time.Since(start)
			p.stop()
			if acks := s.dur.acks.Get(); acks > 0 {
				b.ReportMetric(float64(b.N)/float64(acks), "events/batch")
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
		})
	}
}

// newPartitionedBenchServer is newDurableBenchServer with p partitions.
func newPartitionedBenchServer(b *testing.B, p int) *Server {
	b.Helper()
	nc, err := nats.Connect(runNATSChild(b, "js"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	s, err := New(Options{Conn: nc, Source: testSource, Admission: AdmissionOptions{Disabled: true},
		Delivery: bus.AllModes(bus.ModeDurable), Durable: DurableOptions{Streams: bus.StreamOptions{Partitions: p}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.applyIngest(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}
