package gateway

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestStartOnce: a second Start is refused instead of subscribing and
// listening again over the first.
func TestStartOnce(t *testing.T) {
	e := newTestEnv(t, "h1", nil)
	if err := e.srv.Start(); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	// The first Start still serves.
	resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"))
	wantAccepted(t, resp, body, 1)
}

// TestErrReportsListenerFailure: a listener that fails under the server is
// reported on Err (it used to be written to a channel nobody read, and the
// gateway went on without serving); Shutdown reports nothing on it.
func TestErrReportsListenerFailure(t *testing.T) {
	e := newTestEnv(t, "h1", nil)
	if err := e.srv.ln.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-e.srv.Err():
		if err == nil {
			t.Fatal("Err received nil")
		}
		t.Logf("Err: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no error on Err after the listener closed")
	}

	quiet := newTestEnv(t, "h1", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := quiet.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-quiet.srv.Err():
		t.Fatalf("Err after Shutdown: %v", err)
	default:
	}
}
