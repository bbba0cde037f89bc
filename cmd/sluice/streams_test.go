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

// TestStreamsApply: `sluice streams apply` creates the three streams over
// the durable types' subjects, then leaves them unchanged, updates the
// limits it is given and keeps those it is not, sets the subjects to
// exactly the durable types' (printing what it removed and added), and
// refuses a stream whose retention it would have to change, naming the
// field.
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
	if out := run(2, "--delivery", "core"); !strings.Contains(out, "has no durable type") {
		t.Errorf("apply with every type core:\n%s", out)
	}
	// --delivery defaults to durable, as the gateway's and workers'.
	if out := run(0); out != "sluice-ingest: created\nsluice-enriched: created\nsluice-dlq: created\n" {
		t.Errorf("first apply:\n%s", out)
	}
	if out := run(0, "--delivery", "durable"); out != "sluice-ingest: unchanged\nsluice-enriched: unchanged\nsluice-dlq: unchanged\n" {
		t.Errorf("second apply:\n%s", out)
	}
	if out := run(0, "--delivery", "durable", "--enriched-max-age", "1h", "--duplicates", "1m"); out != "sluice-ingest: updated (duplicate_window)\nsluice-enriched: updated (max_age, duplicate_window)\nsluice-dlq: updated (duplicate_window)\n" {
		t.Errorf("apply with new limits:\n%s", out)
	}
	// Limits not given keep the streams' values.
	if out := run(0, "--delivery", "durable", "--replicas", "1"); out != "sluice-ingest: unchanged\nsluice-enriched: unchanged\nsluice-dlq: unchanged\n" {
		t.Errorf("apply without limits:\n%s", out)
	}
	// Quotes turned core: their subjects are removed, and said so.
	if out := run(0, "--delivery", "quote=core,trade=durable"); out != "sluice-ingest: updated (subjects) removed sluice.ingest.quote.*\n"+
		"sluice-enriched: updated (subjects) removed sluice.enriched.quote.>\nsluice-dlq: updated (subjects) removed sluice.dlq.quote\n" {
		t.Errorf("apply with quote core:\n%s", out)
	}
	if out := run(0, "--delivery", "durable"); out != "sluice-ingest: updated (subjects) added sluice.ingest.quote.*\n"+
		"sluice-enriched: updated (subjects) added sluice.enriched.quote.>\nsluice-dlq: updated (subjects) added sluice.dlq.quote\n" {
		t.Errorf("apply with quote durable again:\n%s", out)
	}
	// The partition count changes on an empty stream only (the default
	// is 4); 1 puts back the unpartitioned subjects.
	if out := run(0, "--partitions", "8"); out != "sluice-ingest: updated (partitions)\nsluice-enriched: unchanged\nsluice-dlq: unchanged\n" {
		t.Errorf("apply with 8 partitions:\n%s", out)
	}
	if out := run(0, "--partitions", "1"); out != "sluice-ingest: updated (subjects, partitions) added sluice.ingest.quote sluice.ingest.trade removed sluice.ingest.trade.* sluice.ingest.quote.*\n"+
		"sluice-enriched: unchanged\nsluice-dlq: unchanged\n" {
		t.Errorf("apply with 1 partition:\n%s", out)
	}
	if out := run(0); out != "sluice-ingest: updated (subjects, partitions) added sluice.ingest.quote.* sluice.ingest.trade.* removed sluice.ingest.quote sluice.ingest.trade\n"+
		"sluice-enriched: unchanged\nsluice-dlq: unchanged\n" {
		t.Errorf("apply with the default partitions:\n%s", out)
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
	out := run(1, "--prefix", "other", "--delivery", "durable")
	if !strings.Contains(out, `stream "other-ingest" exists with retention`) {
		t.Errorf("incompatible stream:\n%s", out)
	}
}
