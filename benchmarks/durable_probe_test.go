package benchmarks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/benchmarks/loadgen"
)

// TestDurableProbe is the probe behind README's "Where the durable
// latency goes": durable and core publish open loop at one fixed rate,
// alternately, with each run's stage breakdown and CPU per event by
// process, against the sluice binary SLUICE_PROBE_BIN. The suite's own
// half-rate run offers half of a closed-loop maximum measured in the same
// run, so on a shared machine two runs seldom offer the same rate; this
// offers SLUICE_PROBE_RATE (default 10,000 req/s) SLUICE_PROBE_ROUNDS
// times (default 2). SLUICE_PROBE_VARIANTS (comma separated, default
// publish-durable,publish), SLUICE_PROBE_CLOSED=1 (closed loop, for a
// batch variant's rate) and SLUICE_PROBE_STREAMS (requests in flight per
// connection, default --streams') change what runs;
// SLUICE_PROBE_WORKER_ARGS (space separated) is added to every worker's
// command line. It logs and asserts nothing;
// it runs only with SLUICE_PROBES=1.
func TestDurableProbe(t *testing.T) {
	bin := os.Getenv("SLUICE_PROBE_BIN")
	if os.Getenv("SLUICE_PROBES") == "" || bin == "" {
		t.Skip("SLUICE_PROBES=1 SLUICE_PROBE_BIN=<sluice binary> go test -v -run TestDurableProbe ./benchmarks runs the probe")
	}
	rate := probeEnv(t, "SLUICE_PROBE_RATE", 10_000)
	rounds := int(probeEnv(t, "SLUICE_PROBE_ROUNDS", 2))
	streams := int(probeEnv(t, "SLUICE_PROBE_STREAMS", 0))
	names := []string{"publish-durable", "publish"}
	if v := os.Getenv("SLUICE_PROBE_VARIANTS"); v != "" {
		names = strings.Split(v, ",")
	}
	mode := loadgen.Open
	if os.Getenv("SLUICE_PROBE_CLOSED") != "" {
		mode, rate = loadgen.Closed, 0
	}
	workerArgs := strings.Fields(os.Getenv("SLUICE_PROBE_WORKER_ARGS"))
	o := Options{Launcher: func(args ...string) *exec.Cmd {
		if len(args) > 0 && args[0] == "worker" {
			args = append(args, workerArgs...)
		}
		return exec.Command(bin, args...)
	},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Duration: 4 * time.Second, Rounds: 1,
		Scenarios: []string{ScenarioDurable}, WorkDir: t.TempDir(), H2Load: "off", Progress: io.Discard}
	o.setDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	s := &suite{o: o, log: o.Logger, instruments: sampleInstruments(), systems: map[string]*system{},
		observers: map[string]*loadgen.Observer{}, h2loads: map[string]*H2Load{}, skipped: map[string][]string{}}
	t.Cleanup(func() { _ = s.close() })
	for r := range rounds {
		for _, name := range names {
			v, ok := variants[name]
			if !ok {
				t.Fatalf("no variant %q", name)
			}
			v.name += "-half" // a half-rate name: the suite reads its stages
			m, err := s.measure(context.Background(), runSpec{v: v, mode: mode, rate: rate, streams: streams, label: name})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(probeLine(name, r, m))
		}
	}
}

// probeLine formats one probe run: rate, latency, refusals, CPU per event
// by process and the stages.
func probeLine(name string, round int, m *Measurement) string {
	l := m.Load.Latency
	var cpu strings.Builder
	var sum float64
	for _, c := range m.CPU {
		if c.Role != RoleLoadgen {
			sum += c.MicrosPerEvent
		}
		fmt.Fprintf(&cpu, " %s %.1f", c.Name, c.MicrosPerEvent)
	}
	return fmt.Sprintf("%s #%d: %.0f events/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, %d × 503; CPU µs/event: system %.1f (%s); %s",
		name, round+1, m.Load.EventsPerSec, l.P50, l.P99, l.P999, m.Load.Status[503], sum, strings.TrimSpace(cpu.String()),
		formatStages(l.P50, l.P99, m.Stages))
}

// probeEnv reads a number from the environment, def when unset.
func probeEnv(t *testing.T, name string, def float64) float64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}
