package ops_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/ops"
)

// TestPrometheusRules checks the Prometheus configuration, recording rules
// and alerts of ops/prometheus/ with promtool, and runs the alerts' unit
// tests (alerts_test.yml). It skips where promtool is not installed
// (Debian: apt-get install prometheus; .ci/run installs it).
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus): the rules of ops/prometheus/ are not checked")
	}
	for _, args := range [][]string{
		{"check", "config", "prometheus/prometheus.yml"}, // and the rule files it names
		{"check", "rules", "prometheus/rules.yml", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	}
}

// TestPrometheusRulesNames: every metric the rules read is one that sluice
// exposes (described in the catalogue), every alert has a unit test and a
// runbook section in ops/README.md.
func TestPrometheusRulesNames(t *testing.T) {
	var rules string
	for _, f := range []string{"prometheus/rules.yml", "prometheus/alerts.yml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rules += string(b)
	}
	// Metric names, not the recorded series (level:metric:operation).
	for _, sm := range regexp.MustCompile(`(?:^|[^:\w])(sluice_\w+)`).FindAllStringSubmatch(rules, -1) {
		m := sm[1]
		name := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(m, suf); ok {
				if f, ok := ops.LookupFamily(base); ok && f.Type == "histogram" {
					name = base
				}
			}
		}
		if _, ok := ops.LookupFamily(name); !ok {
			t.Errorf("the rules read %s, which sluice does not expose (not in ops/catalog.go)", m)
		}
	}
	tests, err := os.ReadFile("prometheus/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	runbook, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\S+)`).FindAllStringSubmatch(rules, -1) {
		alerts = append(alerts, m[1])
		if !strings.Contains(string(tests), "alertname: "+m[1]+"\n") {
			t.Errorf("alert %s has no unit test in prometheus/alerts_test.yml", m[1])
		}
		if !strings.Contains(string(runbook), "\n### "+m[1]+"\n") {
			t.Errorf("alert %s has no runbook section (### %s) in ops/README.md", m[1], m[1])
		}
		if !strings.Contains(rules, "runbook: ops/README.md#"+strings.ToLower(m[1])+"\n") {
			t.Errorf("alert %s does not link its runbook section", m[1])
		}
	}
	for _, want := range []string{"SluiceSheddingSustained", "SluiceGroupWithoutWorkers", "SluiceDepthNearBound",
		"SluiceRequestP99OverBudget", "SluiceNATSDisconnected", "SluiceDeadLettersRising", "SluiceSlowConsumerDrops"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing", want)
		}
	}
}
