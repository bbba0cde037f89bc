package opstest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/ops/opstest"
)

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

func TestCheckForSucceeds(t *testing.T) {
	calls := 0
	opstest.CheckFor(t, time.Second, time.Millisecond, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("calls = %d, want 3", calls)
	}
}

func TestCheckForFailsWithLastError(t *testing.T) {
	ft := &fakeTB{TB: t}
	calls := 0
	opstest.CheckFor(ft, 20*time.Millisecond, time.Millisecond, func() error {
		calls++
		return fmt.Errorf("attempt %d", calls)
	})
	want := fmt.Sprintf("attempt %d", calls)
	if ft.fatal == "" || ft.fatal[len(ft.fatal)-len(want):] != want {
		t.Fatalf("fatal = %q, want it to end with %q", ft.fatal, want)
	}
}

func TestRunNATS(t *testing.T) {
	s, url := opstest.RunNATS(t)
	if !s.JetStreamEnabled() {
		t.Fatal("jetstream not enabled")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer nc.Close()
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// TestRunCluster: a node cut off has no route to the others and they none
// to it; healed, and stopped then started again with its store, it rejoins
// a cluster with a JetStream meta leader.
func TestRunCluster(t *testing.T) {
	c := opstest.RunCluster(t, 3)
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c.Partition(0)
	if n := c.Server(0).NumRoutes(); n != 0 {
		t.Fatalf("%s has %d routes while cut off", c.Name(0), n)
	}
	for _, i := range []int{1, 2} {
		rz, err := c.Server(i).Routez(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rz.Routes {
			if r.RemoteName == c.Name(0) {
				t.Fatalf("%s has a route to %s while it is cut off", c.Name(i), c.Name(0))
			}
		}
		if rz.NumRoutes == 0 {
			t.Fatalf("%s lost its routes to the other node", c.Name(i))
		}
	}
	c.Heal()
	c.WaitReady(30 * time.Second)
	url := c.URL(1)
	c.Stop(1)
	if c.Server(1) != nil {
		t.Fatal("a stopped node has a server")
	}
	c.Start(1)
	c.WaitReady(30 * time.Second)
	if c.URL(1) != url {
		t.Fatalf("restarted node's URL %s, was %s", c.URL(1), url)
	}
	if c.Index("n2") != 1 || c.Index("n9") != -1 {
		t.Fatal("Index")
	}
}
