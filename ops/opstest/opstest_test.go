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
