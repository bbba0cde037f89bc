package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/ops/opstest"
)

// TestStreamsApply: `sluice streams apply` creates the three streams, then
// leaves them unchanged, updates the limits it is given, and refuses a
// stream whose retention it would have to change, naming the field.
func TestStreamsApply(t *testing.T) {
	_, url := opstest.RunNATS(t)
	run := func(wantCode int, args ...string) string {
		t.Helper()
		out, err := sluiceCmd(t, append([]string{"streams", "apply", "--nats", url}, args...)...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("streams apply %v: exit %d, want %d:\n%s", args, code, wantCode, out)
		}
		return string(out)
	}
	if out := run(0); out != "sluice-ingest: created\nsluice-enriched: created\nsluice-dlq: created\n" {
		t.Errorf("first apply:\n%s", out)
	}
	if out := run(0); out != "sluice-ingest: unchanged\nsluice-enriched: unchanged\nsluice-dlq: unchanged\n" {
		t.Errorf("second apply:\n%s", out)
	}
	if out := run(0, "--enriched-max-age", "1h", "--duplicates", "1m"); out != "sluice-ingest: updated (duplicate_window)\nsluice-enriched: updated (max_age, duplicate_window)\nsluice-dlq: updated (duplicate_window)\n" {
		t.Errorf("apply with new limits:\n%s", out)
	}

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "other-ingest", Subjects: []string{"other.ingest.>"}}); err != nil {
		t.Fatal(err)
	}
	out := run(1, "--prefix", "other")
	if !strings.Contains(out, `stream "other-ingest" exists with retention`) {
		t.Errorf("incompatible stream:\n%s", out)
	}
}
