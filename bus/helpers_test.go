package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// env is one embedded JetStream server with a connection, a JetStream
// context and a unique prefix's subjects.
type env struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	subj schemas.Subjects
}

func newEnv(t *testing.T) env {
	t.Helper()
	_, url := opstest.RunNATS(t)
	return connect(t, url)
}

func connect(t *testing.T, url string) env {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return env{nc: nc, js: js, subj: schemas.MustSubjects("t1")}
}

// apply applies the default streams and fails the test on error.
func (e env) apply(t *testing.T, o bus.StreamOptions) []bus.Applied {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := bus.Apply(ctx, e.js, e.subj, o)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return out
}

// streamInfo returns the current info of the named stream.
func (e env) streamInfo(t *testing.T, name string) *jetstream.StreamInfo {
	t.Helper()
	st, err := e.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return st.CachedInfo()
}
