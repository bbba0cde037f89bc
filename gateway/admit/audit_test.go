package admit

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// TestAuditFlood: 1,000 denials of one client in an interval give one
// line; the next interval's flush tells the 999 suppressed; other clients
// and reasons get lines of their own; memory stays bounded.
func TestAuditFlood(t *testing.T) {
	var buf lockedBuffer
	a := NewAudit(AuditOptions{Logger: slog.New(slog.NewTextHandler(&buf, nil)), Interval: time.Second, MaxClients: 4})
	now := time.Now()
	for i := range 1000 {
		a.Deny(DenyInvalidToken, "10.0.0.1", "the token is expired", now.Add(time.Duration(i)*time.Microsecond))
	}
	if l := buf.lines(); len(l) != 1 || !strings.Contains(l[0], "reason=invalid_token") || !strings.Contains(l[0], "suppressed=0") {
		t.Fatalf("1,000 denials logged %d lines: %q", len(l), l)
	}
	a.Deny(DenyRateLimited, "svc-a", "quote", now)
	a.Flush(now.Add(500 * time.Millisecond)) // within the interval: nothing
	if l := buf.lines(); len(l) != 2 {
		t.Fatalf("lines %q, want 2", l)
	}
	a.Flush(now.Add(2 * time.Second))
	l := buf.lines()
	if len(l) != 3 || !strings.Contains(l[2], "suppressed=999") || !strings.Contains(l[2], "client=10.0.0.1") {
		t.Fatalf("after the interval: %q, want one line with suppressed=999", l)
	}
	a.Flush(now.Add(4 * time.Second)) // idle: forgotten, no line
	if len(buf.lines()) != 3 || len(a.entries) != 0 {
		t.Fatalf("idle clients: %d lines, %d entries kept", len(buf.lines()), len(a.entries))
	}
	for i := range 100 { // more clients than MaxClients
		a.Deny(DenyForbidden, strings.Repeat("x", i+1), "trade", now.Add(5*time.Second))
	}
	if len(a.entries) > 5 {
		t.Fatalf("%d clients tracked, want at most MaxClients+1", len(a.entries))
	}
}
