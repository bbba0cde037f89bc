package bus_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
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
