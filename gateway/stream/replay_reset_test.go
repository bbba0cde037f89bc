package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/schemas"
)

// TestSnapshotSurvivesConsumerReset: a snapshot whose ordered consumer is
// deleted midway (as a reconnect or missed heartbeats make nats.go
// recreate it, from the cursor on with every event, not the last per
// subject) still sends the last event of every symbol exactly once and
// nothing older. Found in review: the snapshot counted the recreated
// consumer's older events as the last ones and stopped short.
func TestSnapshotSurvivesConsumerReset(t *testing.T) {
	e, st := newDurableEnv(t, stream.Options{})
	const symbols = 1200 // more than one pull of the ordered consumer
	// Two rounds of every symbol, then a third of the even ones: a
	// recreated consumer would find the even ones' second events (older
	// than their last) after its cursor.
	for round := int64(1); round <= 3; round++ {
		for i := range symbols {
			if round < 3 || i%2 == 0 {
				e.publishTrade(fmt.Sprintf("S%d", i), round)
			}
		}
	}
	e.flushPub()
	const stored = 2*symbols + symbols/2
	waitStored(t, st, stored)
	r, err := stream.NewJetStream(e.pub, e.subjects, bus.AllModes(bus.ModeDurable))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(e.pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string][]uint64{}
	deleted := false
	through, err := r.Replay(ctx, stream.Replay{Kind: schemas.KindTrade, Last: true}, func(ev stream.ReplayedEvent) error {
		got[ev.Symbol] = append(got[ev.Symbol], ev.Pos)
		if !deleted && len(got) == 10 {
			deleted = true
			names := st.ConsumerNames(ctx)
			for name := range names.Name() {
				if err := js.DeleteConsumer(ctx, bus.EnrichedStream(e.subjects), name); err != nil {
					t.Errorf("deleting consumer %s: %v", name, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if through != stored {
		t.Errorf("through %d, want %d", through, stored)
	}
	for i := range symbols {
		sym := fmt.Sprintf("S%d", i)
		want := uint64(symbols + i + 1)
		if i%2 == 0 {
			want = uint64(2*symbols + i/2 + 1)
		}
		if len(got[sym]) != 1 || got[sym][0] != want {
			t.Fatalf("%s sent at %v, want once at %d (%d symbols sent)", sym, got[sym], want, len(got))
		}
	}
}
