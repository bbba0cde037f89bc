package bus_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

func TestStreamNames(t *testing.T) {
	f := func(prefix, want string) {
		t.Helper()
		if got := bus.IngestStream(schemas.MustSubjects(prefix)); got != want {
			t.Errorf("IngestStream(%q) = %q, want %q", prefix, got, want)
		}
	}
	f("", "sluice-ingest")
	f("a.b", "a_b-ingest")
	f("a_b", "a%5Fb-ingest")
	f("a/b", "a%2Fb-ingest")
}

func TestApplyCreatesThenIsANoOp(t *testing.T) {
	e := newEnv(t)
	got := e.apply(t, bus.StreamOptions{})
	want := []bus.Applied{
		{Stream: "t1-ingest", Action: bus.Created},
		{Stream: "t1-enriched", Action: bus.Created},
		{Stream: "t1-dlq", Action: bus.Created},
	}
	if !slices.EqualFunc(got, want, sameApplied) {
		t.Fatalf("first apply = %+v, want %+v", got, want)
	}
	in := e.streamInfo(t, "t1-ingest").Config
	if in.Retention != jetstream.WorkQueuePolicy || in.Discard != jetstream.DiscardNew ||
		!slices.Equal(in.Subjects, []string{"t1.ingest.>"}) || in.Duplicates != 2*time.Minute {
		t.Fatalf("ingest config = %+v", in)
	}
	en := e.streamInfo(t, "t1-enriched").Config
	if en.Retention != jetstream.LimitsPolicy || en.MaxAge != bus.DefaultEnrichedMaxAge || !en.AllowDirect {
		t.Fatalf("enriched config = %+v", en)
	}
	for i, a := range e.apply(t, bus.StreamOptions{}) {
		if a.Action != bus.Unchanged {
			t.Errorf("second apply of %s = %+v, want unchanged", want[i].Stream, a)
		}
	}
}

func TestApplyUpdatesLimits(t *testing.T) {
	e := newEnv(t)
	e.apply(t, bus.StreamOptions{})
	got := e.apply(t, bus.StreamOptions{EnrichedMaxAge: time.Hour, Duplicates: time.Minute})
	if got[1].Action != bus.Updated || !slices.Equal(got[1].Changed, []string{"max_age", "duplicate_window"}) {
		t.Fatalf("enriched = %+v, want updated max_age and duplicate_window", got[1])
	}
	if got[0].Action != bus.Updated || !slices.Equal(got[0].Changed, []string{"duplicate_window"}) {
		t.Fatalf("ingest = %+v, want updated duplicate_window", got[0])
	}
	if c := e.streamInfo(t, "t1-enriched").Config; c.MaxAge != time.Hour || c.Duplicates != time.Minute {
		t.Fatalf("enriched after update: max age %v, duplicates %v", c.MaxAge, c.Duplicates)
	}
}

func TestApplyRefusesIncompatibleStream(t *testing.T) {
	cases := []struct {
		name  string
		cfg   jetstream.StreamConfig
		field string
	}{
		{"retention", jetstream.StreamConfig{Name: "t1-ingest", Subjects: []string{"t1.ingest.>"}, Discard: jetstream.DiscardNew}, "retention"},
		{"subjects", jetstream.StreamConfig{Name: "t1-ingest", Subjects: []string{"t1.ingest.quote"}, Retention: jetstream.WorkQueuePolicy}, "subjects"},
		{"storage", jetstream.StreamConfig{Name: "t1-ingest", Subjects: []string{"t1.ingest.>"}, Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew, Storage: jetstream.MemoryStorage}, "storage"},
		{"discard", jetstream.StreamConfig{Name: "t1-ingest", Subjects: []string{"t1.ingest.>"}, Retention: jetstream.WorkQueuePolicy}, "discard"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if _, err := e.js.CreateStream(context.Background(), tc.cfg); err != nil {
				t.Fatalf("creating the existing stream: %v", err)
			}
			_, err := bus.Apply(context.Background(), e.js, e.subj, bus.StreamOptions{})
			var fe *bus.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, bus.ErrIncompatibleStream) {
				t.Fatalf("apply = %v, want a FieldError", err)
			}
			if fe.Stream != "t1-ingest" || fe.Field != tc.field || fe.Have == fe.Want {
				t.Fatalf("field error = %+v (%v), want field %s", fe, err, tc.field)
			}
			after := e.streamInfo(t, "t1-ingest").Config
			if after.Retention != tc.cfg.Retention || !slices.Equal(after.Subjects, tc.cfg.Subjects) ||
				after.Storage != tc.cfg.Storage || after.Discard != tc.cfg.Discard {
				t.Fatalf("stream changed to %+v", after)
			}
			t.Log(err)
		})
	}
}

func TestApplyKeepsOperatorFields(t *testing.T) {
	e := newEnv(t)
	e.apply(t, bus.StreamOptions{})
	st, _ := e.js.Stream(context.Background(), "t1-dlq")
	cfg := st.CachedInfo().Config
	cfg.MaxMsgs = 1000
	if _, err := e.js.UpdateStream(context.Background(), cfg); err != nil {
		t.Fatalf("operator update: %v", err)
	}
	got := e.apply(t, bus.StreamOptions{DLQMaxAge: time.Hour})
	if got[2].Action != bus.Updated {
		t.Fatalf("dlq = %+v, want updated", got[2])
	}
	if c := e.streamInfo(t, "t1-dlq").Config; c.MaxMsgs != 1000 || c.MaxAge != time.Hour {
		t.Fatalf("dlq max msgs %d, max age %v: want 1000 kept and 1h set", c.MaxMsgs, c.MaxAge)
	}
}

func TestApplyValidates(t *testing.T) {
	e := newEnv(t)
	if _, err := bus.Apply(context.Background(), e.js, e.subj, bus.StreamOptions{Replicas: 7}); err == nil {
		t.Fatal("apply with 7 replicas: no error")
	}
}

func sameApplied(a, b bus.Applied) bool {
	return a.Stream == b.Stream && a.Action == b.Action && slices.Equal(a.Changed, b.Changed)
}
