package bus_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops"
	"github.com/sluice-dev/sluice/schemas"
)

// A durable publisher stores a batch in the ingest stream; the same
// Nats-Msg-Id published again, as a retry after a lost ack would, is
// stored once.
func ExampleDurable() {
	dir, _ := os.MkdirTemp("", "bus-example")
	defer os.RemoveAll(dir)
	s, err := ops.RunNATS(ops.NATSOptions{Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Shutdown()
	nc, _ := nats.Connect(s.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)

	ctx := context.Background()
	subj := schemas.MustSubjects("")
	if _, err := bus.Apply(ctx, js, subj, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)}); err != nil {
		fmt.Println(err)
		return
	}
	p, _ := bus.NewDurable(nc, bus.DurableOptions{})
	hdr := nats.Header{bus.HeaderMsgID: []string{"gateway-1/42"}}
	for range 2 {
		ack, err := p.Publish(ctx, subj.Ingest(schemas.KindQuote), hdr, []byte("frame"))
		if err != nil {
			fmt.Println(err)
			return
		}
		rc, err := ack.Wait(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("stored in %s at %d, duplicate %v\n", rc.Stream, rc.Sequence, rc.Duplicate)
	}
	// Output:
	// stored in sluice-ingest at 1, duplicate false
	// stored in sluice-ingest at 1, duplicate true
}
