package benchmarks

import (
	"strings"
	"testing"
	"time"
)

// The order check takes the ingest tap's events and the enriched stream
// read back in stream order, and counts per symbol what was stored out of
// ingest order, twice, unseen or never.
func TestScaleCheckOrder(t *testing.T) {
	type stored struct{ id, sym string }
	f := func(name string, ingested []string, back []stored, want ScaleOrder) {
		t.Helper()
		c := newScaleCheck()
		for i, id := range ingested {
			c.ingested(id, 0, int64(i+1))
		}
		for i, s := range back {
			c.storedEvent(s.id, s.sym, int64(100+i))
		}
		got := c.result()
		got.Example = ""
		if got != want {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
	f("in order, symbols interleaved", []string{"a1", "b1", "a2", "b2"},
		[]stored{{"b1", "B"}, {"a1", "A"}, {"b2", "B"}, {"a2", "A"}},
		ScaleOrder{Ingested: 4, Stored: 4, Symbols: 2})
	f("one symbol swapped", []string{"a1", "a2", "a3", "b1"},
		[]stored{{"a2", "A"}, {"a1", "A"}, {"b1", "B"}, {"a3", "A"}},
		ScaleOrder{Ingested: 4, Stored: 4, Symbols: 2, OutOfOrder: 1})
	f("a late one counts once, the rest in order after the highest", []string{"a1", "a2", "a3", "a4"},
		[]stored{{"a2", "A"}, {"a3", "A"}, {"a1", "A"}, {"a4", "A"}},
		ScaleOrder{Ingested: 4, Stored: 4, Symbols: 1, OutOfOrder: 1})
	f("stored twice, unseen, missing", []string{"a1", "a2", "a3", "a1"},
		[]stored{{"a1", "A"}, {"a1", "A"}, {"x", "A"}, {"a2", "A"}},
		ScaleOrder{Ingested: 3, Stored: 4, Symbols: 1, Duplicates: 1, Unknown: 1, Missing: 1})

	c := newScaleCheck()
	c.ingested("a1", 0, 1)
	c.ingested("a2", 0, 2)
	c.storedEvent("a2", "AAPL", 3)
	c.storedEvent("a1", "AAPL", 4)
	if o := c.result(); o.Intact() || !strings.Contains(o.Example, "AAPL: event a1, ingested 1 events before") {
		t.Errorf("example %q, intact %v", o.Example, o.Intact())
	}
	if (ScaleOrder{}).Intact() {
		t.Error("nothing stored is not intact")
	}
}

// Around a kill, each partition's stall runs from the kill to its first
// event stored after it, its wait is the longest any of its events then
// waited for its store, and the recovery runs to the last store of an
// event ingested before the kill.
func TestScaleCheckFailover(t *testing.T) {
	c := newScaleCheck()
	if f := c.failover(2); f.MaxStall != 0 || f.Silent != 0 || len(f.Stalls) != 0 {
		t.Fatalf("no kill: %+v", f)
	}
	ms := int64(time.Millisecond)
	for i, id := range []string{"p0-old", "p1-old", "p2-a", "p2-b"} {
		c.ingested(id, []int{0, 1, 2, 2}[i], int64(10+i)*ms)
	}
	c.ingested("p0-new", 0, 120*ms)
	c.ingested("p1-new", 1, 130*ms)
	c.ingested("p2-late", 2, 9500*ms) // stored after the load ended
	c.killed(100*ms, 8100*ms)
	c.storedEvent("p0-new", "A", 140*ms)  // partition 0 moves on at once
	c.storedEvent("p2-a", "C", 110*ms)    // partition 2 stores one at once...
	c.storedEvent("p1-old", "B", 5100*ms) // partition 1's batch waited out its AckWait
	c.storedEvent("p1-new", "B", 5110*ms)
	c.storedEvent("p2-b", "C", 5120*ms)   // ...then waits for a batch the dead worker got
	c.storedEvent("p0-old", "A", 5200*ms) // out of order: stored after p0-new
	c.storedEvent("p2-late", "C", 9600*ms)
	f := c.failover(4)
	d := time.Millisecond
	if len(f.Stalls) != 3 || f.Stalls[0] != 40*d || f.Stalls[1] != 5000*d || f.Stalls[2] != 10*d || f.MaxStall != 5000*d || f.Silent != 1 {
		t.Fatalf("stalls %v, max %v, %d silent; want [40ms 5s 10ms], one silent", f.Stalls, f.MaxStall, f.Silent)
	}
	if len(f.Waits) != 3 || f.Waits[0] != 5100*d || f.Waits[1] != 5000*d || f.Waits[2] != 5020*d || f.MaxWait != 5100*d {
		t.Fatalf("waits %v, max %v; want [5.1s 5s 5.02s]", f.Waits, f.MaxWait)
	}
	if f.Recovered != 5100*d {
		t.Fatalf("recovered %v, want 5.1s", f.Recovered)
	}
	if o := c.result(); o.OutOfOrder != 1 || o.Missing != 0 {
		t.Fatalf("order %+v", o)
	}
	if s := f.String(); !strings.Contains(s, "(3 partitions over 1 s)") || !strings.Contains(s, "1 partition stored nothing") {
		t.Errorf("failover line: %s", s)
	}
}

func TestScaleTargets(t *testing.T) {
	if ts := scaleTargets(nil); len(ts) != 3 || ts[0].Status != NA || ts[1].Status != NA || ts[2].Status != NA {
		t.Fatalf("not run: %+v", ts)
	}
	steps := func(rates ...float64) []ScaleStep {
		var out []ScaleStep
		for i, r := range rates {
			out = append(out, ScaleStep{Workers: i + 1, Enriched: r, Linear: linearRatio(r, i+1, rates[0])})
		}
		return out
	}
	intact := ScaleOrder{Ingested: 10, Stored: 10, Symbols: 2}
	f := func(name string, sc *Scale, want [3]string) {
		t.Helper()
		ts := scaleTargets(sc)
		for i := range ts {
			if ts[i].Status != want[i] {
				t.Errorf("%s: %s is %s (%s), want %s", name, ts[i].Name, ts[i].Status, ts[i].Figure, want[i])
			}
		}
	}
	fo := &ScaleFailover{Partitions: 8, MaxStall: 5 * time.Second, AckWait: 5 * time.Second}
	f("linear, in order", &Scale{Partitions: 8, Steps: steps(1000, 1900, 2750), Order: intact, Failover: fo}, [3]string{Met, Met, Reported})
	f("3 workers below 0.9", &Scale{Partitions: 8, Steps: steps(1000, 1900, 2600), Order: intact}, [3]string{NotMet, Met, NA})
	f("2 workers only", &Scale{Partitions: 8, Steps: steps(1000, 2000), Order: intact}, [3]string{NotMet, Met, NA})
	f("out of order, a silent partition", &Scale{Partitions: 1, Steps: steps(1000, 2000, 3000),
		Order: ScaleOrder{Ingested: 10, Stored: 10, Symbols: 2, OutOfOrder: 3}, Failover: &ScaleFailover{Partitions: 8, Silent: 1}},
		[3]string{Met, NotMet, NotMet})
	if r := linearRatio(2700, 3, 1000); r != 0.9 {
		t.Errorf("linearRatio %v", r)
	}
	if r := linearRatio(2700, 3, 0); r != 0 {
		t.Errorf("linearRatio without a single rate %v", r)
	}
}

func TestParseWork(t *testing.T) {
	page := `# HELP x
sluice_worker_batches_total{group="quotes"} 40
sluice_worker_batches_total_other 7
sluice_worker_events_total{group="quotes",kind="quote",outcome="enriched"} 1200
sluice_worker_events_total{group="quotes",kind="quote",outcome="rejected"} 3
sluice_worker_batch_duration_seconds_bucket{group="quotes",vmrange="1.0e-3...1.2e-3"} 40
sluice_worker_batch_duration_seconds_sum{group="quotes"} 1.5
sluice_worker_batch_duration_seconds_count{group="quotes"} 40
`
	w, err := parseWork(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if w != (workerWork{batches: 40, events: 1200, busy: 1.5}) {
		t.Fatalf("parsed %+v", w)
	}
	if _, err := parseWork(strings.NewReader("sluice_worker_batches_total{} x\n")); err == nil {
		t.Fatal("an unreadable value parsed")
	}
}

func TestScalePlanAndMerge(t *testing.T) {
	if p := scalePlan(1); len(p) != 4 || p[3] != 0 {
		t.Errorf("one round: %v", p)
	}
	if p := scalePlan(2); len(p) != 7 || p[3] != 0 || p[4] != 3 || p[6] != 1 {
		t.Errorf("two rounds: %v", p)
	}
	m := mergeSteps([]ScaleStep{{Workers: 2, Enriched: 1800, Shed: 10, WaitingMin: 4, Busy: 0.9},
		{Workers: 2, Enriched: 2000, Shed: 5, WaitingMin: 2, Busy: 0.7}})
	if m.Workers != 2 || m.Enriched != 1900 || m.Shed != 15 || m.WaitingMin != 2 || m.Busy != 0.8 {
		t.Errorf("merged %+v", m)
	}
	if m := mergeSteps(nil); m.Workers != 0 {
		t.Errorf("merged nothing: %+v", m)
	}
}
