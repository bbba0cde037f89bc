package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/benchmarks"
)

// TestBenchQuick runs `sluice bench --quick` as a user would: every
// scenario for a fraction of a second against real child processes (the
// test binary re-executed as sluice), and checks that the reports are
// written. No figure is asserted: benchmarks are not timed tests.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dozen processes; skipped with -short")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "RESULTS.md")
	cmd := sluiceCmd(t, "bench", "--quick", "--out", out, "--workdir", filepath.Join(dir, "work"),
		"--conns", "4", "--streams", "8", "--overload-streams", "32", "--log-level", "warn")
	start := time.Now()
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sluice bench: %v\n%s", err, outb)
	}
	t.Logf("quick suite in %v", time.Since(start).Round(time.Millisecond))
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Quick run", "### baseline", "### naive", "### publish", "### request", "### batch",
		"### durable", "### fanout", "SSE delivered", "### slow-consumer", "fast subscribers' p99", "### scale", "| scale order |", "`publish-durable`", "`naive-durable`", "`js-pub-600-dedupe`", "| durable publish vs core |", "### sweep", "### overload", "#### bottleneck: workers", "#### bottleneck: gateway", "sweep.svg",
		"| publish vs baseline |", "`publish-traced`", "where the time of request went", "| overload latency |", "| overload latency, gateway CPU the bottleneck |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("RESULTS.md lacks %q", want)
		}
	}
	var res benchmarks.Results
	js, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Scenarios) != len(benchmarks.Scenarios) {
		t.Fatalf("%d scenarios in results.json", len(res.Scenarios))
	}
	// Under the race detector on a busy machine a run of a few hundred
	// milliseconds may see no answer at all; the suite as a whole must.
	var answered uint64
	for _, sc := range res.Scenarios {
		for _, r := range sc.Runs {
			answered += r.Load.Answered
		}
	}
	if answered == 0 {
		t.Fatal("no run got an answer")
	}
	if _, err := os.Stat(filepath.Join(dir, "sweep.svg")); err != nil {
		t.Fatal(err)
	}
}

// TestBenchOverloadGatewayOnly runs the gateway-bound overload alone, as
// `--scenario overload --overload-runs gateway` does to try a change in a
// few seconds: it measures its own capacity and unloaded p99, and the
// trivial server at the same rate.
func TestBenchOverloadGatewayOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes; skipped with -short")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "RESULTS.md")
	cmd := sluiceCmd(t, "bench", "--quick", "--scenario", "overload", "--overload-runs", "gateway", "--out", out,
		"--workdir", filepath.Join(dir, "work"), "--conns", "4", "--streams", "8", "--overload-streams", "32",
		"--h2load", "none", "--log-level", "warn")
	if outb, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sluice bench: %v\n%s", err, outb)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#### bottleneck: gateway", "| unloaded p99 |", "open-loop publish at 25% of the capacity",
		"| baseline server at the same offered rate |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("RESULTS.md lacks %q", want)
		}
	}
	if strings.Contains(string(md), "#### bottleneck: workers") {
		t.Error("RESULTS.md has the workers-bound run, which --overload-runs gateway leaves out")
	}
}
