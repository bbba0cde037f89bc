package workers

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// BenchmarkEndToEndDurable is BenchmarkEndToEnd/no-subscriber in durable
// delivery: frames of 100 quotes, each event with its own id, stored in
// the ingest stream (file storage, the embedded server in this process)
// and consumed by a worker that stores every enriched event in the
// enriched stream before it acks the frame. One op is one event processed
// and acked.
func BenchmarkEndToEndDurable(b *testing.B) {
	const perFrame, window = 100, 64
	_, url := opstest.RunNATS(b)
	conn := func() *nats.Conn {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	opts := benchOptions("quotes")
	opts.Conn = conn()
	opts.Delivery = bus.AllModes(bus.ModeDurable)
	w, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Shutdown(context.Background()) })

	js, err := jetstream.New(conn(), jetstream.WithPublishAsyncMaxPending(window))
	if err != nil {
		b.Fatal(err)
	}
	frames := (b.N + perFrame - 1) / perFrame
	data := make([][]byte, frames)
	for i := range data {
		data[i] = benchFrameIDs(perFrame, fmt.Sprintf("%d-%d-", b.N, i))
	}
	subj := opts.Subjects.Ingest(schemas.KindQuote)
	want := uint64(frames * perFrame)
	b.SetBytes(int64(len(data[0]) / perFrame))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range frames {
		for int64(i-window)*perFrame > int64(w.Processed()) {
			time.Sleep(20 * time.Microsecond) // pacing: keep the backlog short
		}
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: subj, Data: data[i]}); err != nil {
			b.Fatal(err)
		}
	}
	opstest.CheckFor(b, time.Minute, 100*time.Microsecond, func() error {
		if n := w.dur.m.acks.Get(); n < uint64(frames) {
			return fmt.Errorf("%d of %d frames acked (%d events of %d)", n, frames, w.Processed(), want)
		}
		return nil
	})
}

// benchFrameIDs is benchFrame of n quotes whose ids start with prefix.
func benchFrameIDs(n int, prefix string) []byte {
	r := schemas.NewReader(benchFrame(schemas.KindQuote, n, 0, false))
	if _, err := schemas.ReadBatchFrame(&r); err != nil {
		panic(err)
	}
	b := schemas.BatchFrameHeader(nil)
	for i := range n {
		var ev schemas.Event
		if err := ev.DecodeMsgpack(&r); err != nil {
			panic(err)
		}
		ev.ID = prefix + ev.ID
		b = ev.AppendMsgpack(b)
		_ = i
	}
	schemas.FinishBatchFrame(b, n)
	return b
}

// BenchmarkStoreEnriched compares two ways to store a batch's 100
// enriched events (300-byte bodies, each with a Nats-Msg-Id) in a stream on
// the embedded server, one batch in flight as in one processing goroutine:
// "async", what the worker does (100 asynchronous publishes, then wait for
// every ack), and "atomic", nats-server's atomic batch publish (99
// publishes and a commit request, stored all or nothing). One op is one
// event stored.
func BenchmarkStoreEnriched(b *testing.B) {
	const perBatch = 100
	setup := func(b *testing.B) (*nats.Conn, jetstream.JetStream) {
		_, url := opstest.RunNATS(b)
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "E", Subjects: []string{"e.>"},
			Duplicates: 2 * time.Minute, AllowAtomicPublish: true}); err != nil {
			b.Fatal(err)
		}
		return nc, js
	}
	payload := make([]byte, 300)
	subject := func(j int) string { return "e.quote.S" + strconv.Itoa(j%50) }
	b.Run("async", func(b *testing.B) {
		_, js := setup(b)
		futs := make([]jetstream.PubAckFuture, 0, perBatch)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += perBatch {
			futs = futs[:0]
			for j := range perBatch {
				f, err := js.PublishMsgAsync(&nats.Msg{Subject: subject(j), Data: payload,
					Header: nats.Header{bus.HeaderMsgID: {"src " + strconv.Itoa(i+j)}}})
				if err != nil {
					b.Fatal(err)
				}
				futs = append(futs, f)
			}
			for _, f := range futs {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("atomic", func(b *testing.B) {
		nc, _ := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += perBatch {
			id := "b" + strconv.Itoa(i)
			for j := range perBatch {
				m := &nats.Msg{Subject: subject(j), Data: payload, Header: nats.Header{
					bus.HeaderMsgID: {"src " + strconv.Itoa(i+j)}, "Nats-Batch-Id": {id},
					"Nats-Batch-Sequence": {strconv.Itoa(j + 1)}}}
				if j < perBatch-1 {
					if err := nc.PublishMsg(m); err != nil {
						b.Fatal(err)
					}
					continue
				}
				m.Header.Set("Nats-Batch-Commit", "1")
				r, err := nc.RequestMsg(m, 5*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				if bytes.Contains(r.Data, []byte(`"error"`)) {
					b.Fatalf("atomic batch: %s", r.Data)
				}
			}
		}
	})
}
