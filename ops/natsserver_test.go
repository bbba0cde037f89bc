package ops_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/ops"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines to log into.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runNATS runs a JetStream server on a free port, logging into logs, and
// shuts it down in t.Cleanup.
func runNATS(t *testing.T, logs *syncBuffer) *server.Server {
	t.Helper()
	s, err := ops.RunNATS(ops.NATSOptions{
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		ServerName: "sluice-test",
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatalf("RunNATS: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

func TestRunNATSPubSub(t *testing.T) {
	var logs syncBuffer
	s := runNATS(t, &logs)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("md.ticks")
	if err != nil {
		t.Fatalf("subscribing: %v", err)
	}
	if err := nc.Publish("md.ticks", []byte("AAPL 101.5")); err != nil {
		t.Fatalf("publishing: %v", err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("receiving: %v", err)
	}
	if string(msg.Data) != "AAPL 101.5" {
		t.Errorf("got %q", msg.Data)
	}
	if out := logs.String(); !strings.Contains(out, "component=nats-server") || !strings.Contains(out, "level=INFO") {
		t.Errorf("server notices not logged through slog:\n%s", out)
	}
}

func TestRunNATSJetStreamKV(t *testing.T) {
	s := runNATS(t, new(syncBuffer))
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "instruments"})
	if err != nil {
		t.Fatalf("creating bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "AAPL", []byte("XNAS")); err != nil {
		t.Fatalf("put: %v", err)
	}
	e, err := kv.Get(ctx, "AAPL")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if string(e.Value()) != "XNAS" {
		t.Errorf("AAPL = %q, want XNAS", e.Value())
	}
}

func TestRunNATSErrors(t *testing.T) {
	if _, err := ops.RunNATS(ops.NATSOptions{JetStream: true, Port: -1}); !errors.Is(err, ops.ErrStoreDirRequired) {
		t.Errorf("JetStream without StoreDir: %v, want ErrStoreDirRequired", err)
	}
	if _, err := ops.RunNATS(ops.NATSOptions{Port: 70000}); err == nil {
		t.Error("port 70000 accepted")
	}
	taken := runNATS(t, new(syncBuffer)).Addr().(*net.TCPAddr).Port
	_, err := ops.RunNATS(ops.NATSOptions{Port: taken})
	if !errors.Is(err, ops.ErrNATSNotReady) || !strings.Contains(err.Error(), "listening") {
		t.Errorf("port in use: %v, want ErrNATSNotReady with the reason", err)
	}
}

// TestRunNATSQuietNotices: with QuietNotices the startup banner moves from
// info to debug, so an info log shows none of it; a notice after startup (a
// slow consumer, say) still shows at info.
func TestRunNATSQuietNotices(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		var logs syncBuffer
		s, err := ops.RunNATS(ops.NATSOptions{Port: server.RANDOM_PORT, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			QuietNotices: quiet})
		if err != nil {
			t.Fatal(err)
		}
		s.Noticef("Slow Consumer Detected: test")
		s.Shutdown()
		s.WaitForShutdown()
		if got := strings.Contains(logs.String(), "Starting nats-server"); got == quiet {
			t.Errorf("QuietNotices %v: banner at info = %v\n%s", quiet, got, logs.String())
		}
		if !strings.Contains(logs.String(), "Slow Consumer Detected: test") {
			t.Errorf("QuietNotices %v: a notice after startup is not at info\n%s", quiet, logs.String())
		}
	}
}
