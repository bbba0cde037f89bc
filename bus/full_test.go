package bus_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sluice-dev/sluice/bus"
)

func TestFullIngestRefusesNewKeepsStored(t *testing.T) {
	e := newEnv(t)
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable), IngestMaxBytes: 1500})
	p, _ := bus.NewDurable(e.nc, bus.DurableOptions{})
	var stored, full int
	for range 4 {
		ack, err := p.Publish(context.Background(), "t1.ingest.quote", nil, make([]byte, 600))
		if err != nil {
			t.Fatal(err)
		}
		switch _, err := ack.Wait(context.Background()); {
		case err == nil:
			stored++
		case errors.Is(err, bus.ErrStreamFull) && !bus.Retryable(err):
			full++
		default:
			t.Fatalf("publish to a full ingest stream = %v, want ErrStreamFull, not retryable", err)
		}
	}
	st := e.streamInfo(t, "t1-ingest").State
	if stored != 2 || full != 2 || st.Msgs != 2 || st.FirstSeq != 1 {
		t.Fatalf("stored %d, full %d; stream holds %d from seq %d: want the first 2 kept, 2 refused",
			stored, full, st.Msgs, st.FirstSeq)
	}
}
