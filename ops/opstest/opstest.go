// Package opstest holds test helpers built on package ops: an embedded NATS
// server with JetStream per test, a JetStream cluster of several servers in
// the test process whose nodes a fault test can restart or cut off
// ([RunCluster]), a TCP proxy to cut ([Proxy]), a server run from the
// compose stack's NATS configuration (TLS, one user per role:
// [RunSecureNATS]), and a poll helper to wait for a condition without
// sleeping for a fixed time.
package opstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sluice-dev/sluice/ops"
)

// RunNATS starts a NATS server for the test with JetStream on, on a free
// loopback port, storing in a fresh t.TempDir(), and returns it with its
// client URL. The server is shut down by t.Cleanup, before the store is
// removed. It fails the test if the server does not start.
func RunNATS(t testing.TB) (*server.Server, string) {
	t.Helper()
	s, err := ops.RunNATS(ops.NATSOptions{
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
	})
	if err != nil {
		t.Fatalf("running nats: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s, s.ClientURL()
}

// CheckFor calls f every interval until it returns nil, and fails the test
// with f's last error when total has passed without success. f runs at least
// once.
func CheckFor(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", total, err)
			return
		}
		time.Sleep(every)
	}
}
