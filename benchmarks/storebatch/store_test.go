package storebatch

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// perBatch is the events of one batch, as the gateway's batches of single
// events fill up to 100-odd.
const perBatch = 100

// setup starts an embedded server with JetStream on file storage and the
// stream E, which allows both batch publishes and deduplicates for two
// minutes (as sluice's enriched stream).
func setup(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(),
		NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats-server not ready within 10s")
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "E", Subjects: []string{"e.>"},
		Duplicates: 2 * time.Minute, AllowAtomicPublish: true, AllowBatchPublish: true}); err != nil {
		tb.Fatal(err)
	}
	return js
}

var payload = make([]byte, 300)

// batch returns the 100 enriched events of the batch whose first event is
// number first, spread over 50 symbols, each with its Nats-Msg-Id.
func batch(first int) []*nats.Msg {
	out := make([]*nats.Msg, perBatch)
	for j := range out {
		out[j] = &nats.Msg{Subject: "e.quote.S" + strconv.Itoa(j%50), Data: payload,
			Header: nats.Header{jetstream.MsgIDHeader: {"src " + strconv.Itoa(first+j)}}}
	}
	return out
}

// storeFunc stores one batch and returns how many of its messages the
// stream reported as duplicates (-1 when it cannot tell).
type storeFunc func(js jetstream.JetStream, ms []*nats.Msg) (int, error)

func storeAsync(js jetstream.JetStream, ms []*nats.Msg) (int, error) {
	futs := make([]jetstream.PubAckFuture, 0, len(ms))
	for _, m := range ms {
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return 0, err
		}
		futs = append(futs, f)
	}
	dups := 0
	var first error
	for _, f := range futs {
		select {
		case a := <-f.Ok():
			if a.Duplicate {
				dups++
			}
		case err := <-f.Err():
			if first == nil {
				first = err
			}
		}
	}
	return dups, first
}

func storeAtomic(js jetstream.JetStream, ms []*nats.Msg) (int, error) {
	_, err := jetstreamext.PublishMsgBatch(context.Background(), js, ms)
	return -1, err
}

func storeFast(js jetstream.JetStream, ms []*nats.Msg) (int, error) {
	fp, err := jetstreamext.NewFastPublisher(js)
	if err != nil {
		return 0, err
	}
	for _, m := range ms[:len(ms)-1] {
		if _, err := fp.AddMsg(m); err != nil {
			return 0, err
		}
	}
	_, err = fp.CommitMsg(context.Background(), ms[len(ms)-1])
	return -1, err
}

var ways = []struct {
	name  string
	store storeFunc
}{{"async", storeAsync}, {"atomic", storeAtomic}, {"fast", storeFast}}

// BenchmarkStore stores batches one at a time, as one worker goroutine
// does; one op is one event stored.
func BenchmarkStore(b *testing.B) {
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			js := setup(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += perBatch {
				if _, err := w.store(js, batch(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreParallel stores 8 batches at once (goroutines of one
// worker, or several workers on one connection); one op is one event.
func BenchmarkStoreParallel(b *testing.B) {
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			js := setup(b)
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(4) // 4 × GOMAXPROCS 2
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for n := 1; pb.Next(); n++ {
					if n%perBatch == 0 {
						if _, err := w.store(js, batch(int(next.Add(perBatch)))); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
		})
	}
}

// TestRedelivered stores a batch, then stores it again, then a batch half
// of whose events the stream holds: async and fast store only what is new
// and report success; atomic refuses a batch holding one known id, whole.
func TestRedelivered(t *testing.T) {
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			js := setup(t)
			msgs := func() uint64 {
				t.Helper()
				s, err := js.Stream(context.Background(), "E")
				if err != nil {
					t.Fatal(err)
				}
				return s.CachedInfo().State.Msgs
			}
			if _, err := w.store(js, batch(0)); err != nil || msgs() != perBatch {
				t.Fatalf("first store: %v, %d messages", err, msgs())
			}
			dups, err := w.store(js, batch(0))
			if w.name == "atomic" {
				if err == nil {
					t.Fatal("atomic batch of known ids accepted")
				}
			} else if err != nil || (dups != -1 && dups != perBatch) {
				t.Fatalf("stored again: %v, %d duplicates", err, dups)
			}
			if n := msgs(); n != perBatch {
				t.Fatalf("stored again: %d messages, want %d", n, perBatch)
			}
			_, err = w.store(js, batch(perBatch/2))
			want := uint64(perBatch + perBatch/2)
			if w.name == "atomic" {
				want = perBatch
				if err == nil {
					t.Fatal("atomic batch holding known ids accepted")
				}
			} else if err != nil {
				t.Fatalf("half new: %v", err)
			}
			if n := msgs(); n != want {
				t.Fatalf("half new: %d messages, want %d", n, want)
			}
		})
	}
}
