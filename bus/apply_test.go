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
	got := e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
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
		!slices.Equal(in.Subjects, []string{"t1.ingest.quote", "t1.ingest.trade"}) || in.Duplicates != 2*time.Minute {
		t.Fatalf("ingest config = %+v", in)
	}
	en := e.streamInfo(t, "t1-enriched").Config
	if en.Retention != jetstream.LimitsPolicy || en.MaxAge != bus.DefaultEnrichedMaxAge || !en.AllowDirect {
		t.Fatalf("enriched config = %+v", en)
	}
	for i, a := range e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)}) {
		if a.Action != bus.Unchanged {
			t.Errorf("second apply of %s = %+v, want unchanged", want[i].Stream, a)
		}
	}
}

func TestApplyUpdatesLimits(t *testing.T) {
	e := newEnv(t)
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	got := e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable), EnrichedMaxAge: time.Hour, Duplicates: time.Minute})
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
		{"subjects", jetstream.StreamConfig{Name: "t1-ingest", Subjects: []string{"t1.ingest.quote", "other.x"}, Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew}, "subjects"},
		{"storage", jetstream.StreamConfig{Name: "t1-ingest", Subjects: []string{"t1.ingest.>"}, Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew, Storage: jetstream.MemoryStorage}, "storage"},
		{"discard", jetstream.StreamConfig{Name: "t1-ingest", Subjects: []string{"t1.ingest.>"}, Retention: jetstream.WorkQueuePolicy}, "discard"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if _, err := e.js.CreateStream(context.Background(), tc.cfg); err != nil {
				t.Fatalf("creating the existing stream: %v", err)
			}
			_, err := bus.Apply(context.Background(), e.js, e.subj, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
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
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	st, _ := e.js.Stream(context.Background(), "t1-dlq")
	cfg := st.CachedInfo().Config
	cfg.MaxMsgs = 1000
	if _, err := e.js.UpdateStream(context.Background(), cfg); err != nil {
		t.Fatalf("operator update: %v", err)
	}
	got := e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable), DLQMaxAge: time.Hour})
	if got[2].Action != bus.Updated {
		t.Fatalf("dlq = %+v, want updated", got[2])
	}
	if c := e.streamInfo(t, "t1-dlq").Config; c.MaxMsgs != 1000 || c.MaxAge != time.Hour {
		t.Fatalf("dlq max msgs %d, max age %v: want 1000 kept and 1h set", c.MaxMsgs, c.MaxAge)
	}
}

// TestApplyAddsSubjects: a stream over some of the durable types' subjects
// gets the others added; a subject of the pipeline that no durable type
// needs and captures no core type (a wildcard the first durable version
// made) is kept, never removed silently.
func TestApplyAddsSubjects(t *testing.T) {
	e := newEnv(t)
	trade := bus.Modes{schemas.KindTrade: bus.ModeDurable}
	got := e.apply(t, bus.StreamOptions{Delivery: trade})
	if c := e.streamInfo(t, "t1-enriched").Config; !slices.Equal(c.Subjects, []string{"t1.enriched.trade.>"}) {
		t.Fatalf("enriched subjects %v, want the trade ones alone", c.Subjects)
	}
	got = e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	for i, name := range []string{"t1-ingest", "t1-enriched", "t1-dlq"} {
		if got[i].Action != bus.Updated || !slices.Equal(got[i].Changed, []string{"subjects"}) || len(got[i].Added) != 1 || got[i].Removed != nil {
			t.Errorf("%s = %+v, want the quote subject added", name, got[i])
		}
	}
	if c := e.streamInfo(t, "t1-ingest").Config; !slices.Equal(c.Subjects, []string{"t1.ingest.trade", "t1.ingest.quote"}) {
		t.Errorf("ingest subjects %v", c.Subjects)
	}

	w := newEnv(t)
	if _, err := w.js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "t1-ingest", Subjects: []string{"t1.ingest.>"},
		Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew}); err != nil {
		t.Fatal(err)
	}
	if got := w.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)}); got[0].Action == bus.Updated && got[0].Changed[0] == "subjects" {
		t.Errorf("ingest over t1.ingest.> = %+v, want its subjects kept", got[0])
	}
	if c := w.streamInfo(t, "t1-ingest").Config; !slices.Equal(c.Subjects, []string{"t1.ingest.>"}) {
		t.Errorf("ingest subjects %v, want t1.ingest.> kept", c.Subjects)
	}
}

// TestApplyRefusesCapturedCoreType: a stream that captures a core type's
// subject is refused, naming the type and the stream, and not changed;
// with Exact (sluice streams apply) the subject is removed, and reported.
func TestApplyRefusesCapturedCoreType(t *testing.T) {
	e := newEnv(t)
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	trade := bus.Modes{schemas.KindTrade: bus.ModeDurable}
	_, err := bus.Apply(context.Background(), e.js, e.subj, bus.StreamOptions{Delivery: trade})
	var ce *bus.CapturedError
	if !errors.As(err, &ce) || !errors.Is(err, bus.ErrIncompatibleStream) || ce.Kind != schemas.KindQuote || ce.Stream != "t1-ingest" {
		t.Fatalf("apply = %v, want a CapturedError for quote on t1-ingest", err)
	}
	if err := bus.CheckCaptured(context.Background(), e.js, e.subj, bus.Modes{}, "t1-dlq"); !errors.As(err, &ce) || ce.Stream != "t1-dlq" {
		t.Fatalf("CheckCaptured = %v, want a CapturedError on t1-dlq", err)
	}
	if c := e.streamInfo(t, "t1-ingest").Config; len(c.Subjects) != 2 {
		t.Fatalf("ingest subjects %v changed", c.Subjects)
	}
	got, err := bus.Apply(context.Background(), e.js, e.subj, bus.StreamOptions{Delivery: trade, Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Action != bus.Updated || !slices.Equal(got[0].Removed, []string{"t1.ingest.quote"}) || got[0].Added != nil {
		t.Errorf("exact apply of ingest = %+v, want t1.ingest.quote removed", got[0])
	}
	if c := e.streamInfo(t, "t1-enriched").Config; !slices.Equal(c.Subjects, []string{"t1.enriched.trade.>"}) {
		t.Errorf("enriched subjects %v after exact apply", c.Subjects)
	}
	if err := bus.CheckCaptured(context.Background(), e.js, e.subj, trade, "t1-ingest", "t1-enriched", "t1-dlq"); err != nil {
		t.Errorf("CheckCaptured after exact apply: %v", err)
	}
	if err := bus.CheckCaptured(context.Background(), e.js, e.subj, bus.Modes{}, "none-such"); err != nil {
		t.Errorf("CheckCaptured of no stream: %v", err)
	}
}

// TestApplyKeepsSettingsLeftZero: settings left zero keep an existing
// stream's values (what another component or an operator set), so the
// last component to start does not undo them.
func TestApplyKeepsSettingsLeftZero(t *testing.T) {
	e := newEnv(t)
	all := bus.AllModes(bus.ModeDurable)
	e.apply(t, bus.StreamOptions{Delivery: all, Duplicates: time.Minute, IngestMaxBytes: 1 << 20, EnrichedMaxAge: time.Hour, EnrichedMaxBytes: -1})
	for _, a := range e.apply(t, bus.StreamOptions{Delivery: all}) {
		if a.Action != bus.Unchanged {
			t.Errorf("apply with settings left zero: %+v, want unchanged", a)
		}
	}
	in, en := e.streamInfo(t, "t1-ingest").Config, e.streamInfo(t, "t1-enriched").Config
	if in.Duplicates != time.Minute || in.MaxBytes != 1<<20 || en.MaxAge != time.Hour || en.MaxBytes != -1 {
		t.Errorf("ingest duplicates %v, max bytes %d; enriched max age %v, max bytes %d: want the first apply's kept",
			in.Duplicates, in.MaxBytes, en.MaxAge, en.MaxBytes)
	}
}

func TestApplyValidates(t *testing.T) {
	e := newEnv(t)
	if _, err := bus.Apply(context.Background(), e.js, e.subj, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable), Replicas: 7}); err == nil {
		t.Fatal("apply with 7 replicas: no error")
	}
	if _, err := bus.Apply(context.Background(), e.js, e.subj, bus.StreamOptions{}); err == nil {
		t.Fatal("apply with no durable type: no error")
	}
}

func sameApplied(a, b bus.Applied) bool {
	return a.Stream == b.Stream && a.Action == b.Action && slices.Equal(a.Changed, b.Changed)
}
