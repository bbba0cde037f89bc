package enrich_test

import (
	"math"
	"os"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops/opstest"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// smallStore returns a Store loaded from testdata/refdata_small.json.
func smallStore(t testing.TB) *enrich.Store {
	t.Helper()
	rd, err := enrich.LoadFile(smallFile)
	if err != nil {
		t.Fatal(err)
	}
	s := enrich.NewStore()
	s.Replace(rd)
	return s
}

// newJetStream starts a NATS server with JetStream for the test and returns
// a JetStream context on a connection to it, closed by t.Cleanup.
func newJetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	_, url := opstest.RunNATS(t)
	return connectJetStream(t, url)
}

// connectJetStream returns a JetStream context on a connection to url,
// closed by t.Cleanup.
func connectJetStream(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// near reports whether got is within a relative 1e-9 (or an absolute 1e-12
// near zero) of want.
func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(math.Abs(want), 1e-3)
}
