package ops_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/ops"
)

func TestNATSLogger(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: ops.LevelTrace}))
	nl := ops.NewNATSLogger(l)
	nl.Noticef("notice %d", 1)
	nl.Warnf("warn %d", 2)
	nl.Errorf("error %d", 3)
	nl.Debugf("debug %d", 4)
	nl.Tracef("trace %d", 5)
	nl.Fatalf("fatal %d", 6)
	nl.Fatalf("fatal %d", 7)
	out := buf.String()
	for _, want := range []string{
		`level=INFO msg="notice 1"`, `level=WARN msg="warn 2"`, `level=ERROR msg="error 3"`,
		`level=DEBUG msg="debug 4"`, `level=DEBUG-4 msg="trace 5"`, `level=ERROR msg="fatal 6" fatal=true`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := nl.Fatal(); got != "fatal 6" {
		t.Errorf("Fatal() = %q, want the first fatal message", got)
	}
}

func TestNATSLoggerNil(t *testing.T) {
	nl := ops.NewNATSLogger(nil)
	nl.Noticef("dropped")
	nl.Fatalf("kept")
	if nl.Fatal() != "kept" {
		t.Errorf("Fatal() = %q, want kept", nl.Fatal())
	}
}
