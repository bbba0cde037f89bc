package benchmarks

import (
	"github.com/sluice-dev/sluice/benchmarks/loadgen"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestParseScenarios(t *testing.T) {
	got, err := ParseScenarios("overload, publish,sweep,publish")
	if err != nil || !slices.Equal(got, []string{"publish", "sweep", "overload"}) {
		t.Fatalf("%v %v", got, err)
	}
	if all, _ := ParseScenarios("all"); !slices.Equal(all, Scenarios) {
		t.Fatalf("all: %v", all)
	}
	if _, err := ParseScenarios("publish,bogus"); err == nil {
		t.Fatal("bogus accepted")
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{Quick: true, TradeShare: -1}
	o.setDefaults()
	if o.Duration != 400*time.Millisecond || o.Rounds != 1 || o.TradeShare != 0 || o.InvalidShare != 0.01 ||
		len(o.Scenarios) != len(Scenarios) || o.Conns != 16 || o.Streams != 32 {
		t.Fatalf("%+v", o)
	}
	if err := o.Validate(); err == nil {
		t.Fatal("options without a launcher accepted")
	}
	// A misspelt priority made every sluice request a 400.
	o.Launcher = func(args ...string) *exec.Cmd { return exec.Command("sluice", args...) }
	o.WorkDir = t.TempDir()
	for p, ok := range map[string]bool{"": true, "high": true, "hihg": false} {
		o.Priority = p
		if err := o.Validate(); (err == nil) != ok {
			t.Errorf("priority %q: %v", p, err)
		}
	}
}

// TestCPUTime burns CPU until this process's CPU time has grown by 20 ms,
// checking that it grows at all (a busy machine gives it fewer time slices,
// not less time per instruction).
func TestCPUTime(t *testing.T) {
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for range 1_000_000 {
			x++
		}
		after, err := cpuTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after-before >= 20*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cpu time %v -> %v in 10 s of spinning (x %d)", before, after, x)
		}
	}
	rss, peak, err := memStatus(os.Getpid())
	if err != nil || rss <= 0 || peak < rss {
		t.Fatalf("rss %d peak %d: %v", rss, peak, err)
	}
}

func TestRSSBounded(t *testing.T) {
	if !rssBounded([]int64{100, 120, 125, 128}) || rssBounded([]int64{100, 110, 150, 200}) {
		t.Fatal("rssBounded")
	}
	// One GC high point in the second half of a plateau (the edge overload
	// of a full run), and a leak that also spikes.
	if !rssBounded([]int64{99, 97, 100, 105, 116, 93, 87, 86}) || rssBounded([]int64{80, 90, 100, 105, 140, 150, 160, 170}) ||
		rssBounded([]int64{100, 100, 100, 100, 95, 95, 110, 125}) {
		t.Fatal("rssBounded: a plateau with one spike, steady growth, growth that starts late")
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568", -45000: "-45,000"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestProcsDefaults: the zero Options run the workers on one CPU, their own
// default, and NATS on Go's default; a negative WorkerProcs is Go's default
// for the workers too.
func TestProcsDefaults(t *testing.T) {
	for _, c := range []struct{ in, want int }{{0, 1}, {-1, 0}, {3, 3}} {
		o := Options{WorkerProcs: c.in}
		o.setDefaults()
		if o.WorkerProcs != c.want || o.NATSProcs != 0 {
			t.Errorf("WorkerProcs %d → %d (NATS %d), want %d (0)", c.in, o.WorkerProcs, o.NATSProcs, c.want)
		}
	}
}

// TestPayloadFormat: --format reaches sluice and the baselines, not the
// naive gateway (which reads JSON only and would answer 400), nor batches;
// the slowed pipeline gets quotes only.
func TestPayloadFormat(t *testing.T) {
	s := &suite{o: Options{SingleFormat: loadgen.FormatMsgpack, TradeShare: 0.2}}
	for name, want := range map[string]loadgen.Format{
		"publish": loadgen.FormatMsgpack, "baseline-plain": loadgen.FormatMsgpack,
		"naive-publish": loadgen.FormatJSON, "naive-request": loadgen.FormatJSON,
		"batch-ndjson": loadgen.FormatNDJSON,
	} {
		if got := s.payloadOptions(variants[name]).Format; got != want {
			t.Errorf("%s: format %q, want %q", name, got, want)
		}
	}
	if ts := s.payloadOptions(variants["slow-publish"]).TradeShare; ts != 0 {
		t.Errorf("slow-publish trade share %v, want 0", ts)
	}
}

// TestOverloadLatencyBound checks DESIGN.md's admitted-p99 bound by
// overload factor: 5× the unloaded p99 at 3× capacity, 10× at 10×.
func TestOverloadLatencyBound(t *testing.T) {
	ov := &Overload{Capacity: 1000, Goodput: 950, GoodputRatio: 0.95, UnloadedP99: 4}
	ov.Admitted.P99 = 28 // 7× the unloaded p99
	for _, c := range []struct {
		factor float64
		want   string
	}{{3, NotMet}, {10, Met}, {20, Met}} {
		lat := overloadTargets(ov, "", c.factor)[1]
		if lat.Status != c.want {
			t.Errorf("factor %g: %s (%s), want %s", c.factor, lat.Status, lat.Goal, c.want)
		}
	}
	ov.Admitted.P99 = 44 // 11×
	if lat := overloadTargets(ov, "", 10)[1]; lat.Status != NotMet {
		t.Errorf("11× at factor 10: %s, want %s", lat.Status, NotMet)
	}
}

func TestOverloadRunsOption(t *testing.T) {
	o := Options{Launcher: func(...string) *exec.Cmd { return nil }, WorkDir: t.TempDir()}
	o.setDefaults()
	if !o.overloadRun(OverloadWorkers) || !o.overloadRun(OverloadGateway) {
		t.Errorf("default overload runs %v, want both", o.OverloadRuns)
	}
	o.OverloadRuns = []string{"edge"}
	if err := o.Validate(); err == nil {
		t.Error("overload run \"edge\" accepted")
	}
}
