package ops_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluice-dev/sluice/ops"
)

func TestWriteSets(t *testing.T) {
	a, b := metrics.NewSet(), metrics.NewSet()
	a.NewCounter("sluice_test_a_total").Add(2)
	b.NewCounter("sluice_test_b_total").Inc()
	var buf bytes.Buffer
	ops.WriteSets(&buf, a, nil, b)
	out := buf.String()
	for _, want := range []string{"sluice_test_a_total 2\n", "sluice_test_b_total 1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
