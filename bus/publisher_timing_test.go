package bus_test

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// The core publisher against the bare client calls it wraps, with and
// without a header, on a real server with no subscriber.
func BenchmarkCorePublish(b *testing.B) {
	_, url := opstest.RunNATS(b)
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	data := make([]byte, 600)
	hdr := nats.Header{"Sluice-Count": []string{"1"}}
	ctx := context.Background()
	p := bus.NewCore(nc)
	run := func(name string, publish func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := publish(); err != nil {
					b.Fatal(err)
				}
			}
			if err := nc.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
	run("bare/nohdr", func() error { return nc.Publish("b.ingest.quote", data) })
	run("bus/nohdr", func() error { _, err := p.Publish(ctx, "b.ingest.quote", nil, data); return err })
	run("bare/hdr", func() error {
		return nc.PublishMsg(&nats.Msg{Subject: "b.ingest.quote", Header: hdr, Data: data})
	})
	run("bus/hdr", func() error { _, err := p.Publish(ctx, "b.ingest.quote", hdr, data); return err })
}

// Durable publishes of 600 bytes with Nats-Msg-Id to a file-backed R1
// stream, up to 256 in flight, every ack awaited: bus's [Durable] against
// jetstream's PublishMsgAsync (with Ok and Err), which it replaced. With
// SLUICE_BENCH_NATS_URL set the server is that one (for example
// nats-server -js -sd $(mktemp -d) -p 4333), not one in the process, so
// that allocs/op and the reported cpu-us/op (the process's user and
// system CPU per publish) are the client's alone.
func BenchmarkDurablePublish(b *testing.B) {
	url := os.Getenv("SLUICE_BENCH_NATS_URL")
	if url == "" {
		_, url = opstest.RunNATS(b)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(bus.DefaultMaxPending),
		jetstream.WithPublishAsyncTimeout(bus.DefaultAckTimeout))
	subj := schemas.MustSubjects("b")
	if _, err := bus.Apply(context.Background(), js, subj, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)}); err != nil {
		b.Fatal(err)
	}
	p, err := bus.NewDurable(nc, bus.DurableOptions{})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 600)
	subject := subj.Enriched(schemas.KindQuote, "AAPL")
	ctx := context.Background()
	run := nuid.Next() + "-" // ids unique to this run: a server kept across runs stores each
	id := 0
	header := func() nats.Header {
		id++
		return nats.Header{bus.HeaderMsgID: []string{run + strconv.Itoa(id)}}
	}
	b.Run("jetstream", func(b *testing.B) {
		acks := make([]jetstream.PubAckFuture, 0, 256)
		wait := func() {
			for _, a := range acks {
				select {
				case <-a.Ok():
				case err := <-a.Err():
					b.Fatal(err)
				}
			}
			acks = acks[:0]
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		cpu := startCPU()
		for b.Loop() {
			a, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Header: header(), Data: data})
			if err != nil {
				b.Fatal(err)
			}
			if acks = append(acks, a); len(acks) == cap(acks) {
				wait()
			}
		}
		wait()
		cpu.report(b)
	})
	b.Run("bus", func(b *testing.B) {
		acks := make([]bus.Ack, 0, 256)
		wait := func() {
			for _, a := range acks {
				if _, err := a.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
			acks = acks[:0]
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		cpu := startCPU()
		for b.Loop() {
			a, err := p.Publish(ctx, subject, header(), data)
			if err != nil {
				b.Fatal(err)
			}
			if acks = append(acks, a); len(acks) == cap(acks) {
				wait()
			}
		}
		wait()
		cpu.report(b)
	})
}

// cpuClock reads the process's CPU time (user and system).
type cpuClock time.Duration

func startCPU() cpuClock { return cpuClock(cpuNow()) }

// report adds the process's CPU time per op since c as cpu-us/op.
func (c cpuClock) report(b *testing.B) {
	b.Helper()
	b.ReportMetric(float64(cpuNow()-time.Duration(c))/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
