package benchmarks

import (
	"bufio"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestStageLatencies(t *testing.T) {
	page := func(n1, n2, inf float64) map[string]stageHist {
		t.Helper()
		text := `# HELP sluice_gateway_stage_seconds x
sluice_gateway_stage_seconds_bucket{stage="decode",le="0.001"} ` + ftoa(n1) + `
sluice_gateway_stage_seconds_bucket{stage="decode",le="0.002"} ` + ftoa(n2) + `
sluice_gateway_stage_seconds_bucket{stage="decode",le="+Inf"} ` + ftoa(inf) + `
sluice_worker_stage_seconds_bucket{group="quotes",stage="queue",le="0.001"} ` + ftoa(n1) + `
sluice_worker_stage_seconds_bucket{group="trades",stage="queue",le="0.001"} ` + ftoa(n1) + `
sluice_worker_stage_seconds_bucket{group="quotes",stage="queue",le="+Inf"} ` + ftoa(n1) + `
sluice_worker_stage_seconds_bucket{group="trades",stage="queue",le="+Inf"} ` + ftoa(n1) + `
sluice_gateway_requests_total{status="202"} 5
`
		out := map[string]stageHist{}
		if err := parseStages(bufio.NewScanner(strings.NewReader(text)), out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before, after := page(10, 10, 10), page(10, 110, 110)
	got := stageLatencies(before, after)
	if len(got) != 1 || got[0].Side != "gateway" || got[0].Stage != "decode" || got[0].Count != 100 {
		t.Fatalf("stages %+v: want gateway decode alone (the queue had no observation in the window), 100 observations", got)
	}
	// 100 observations in (1 ms, 2 ms]: p50 at 1.5 ms, p99 at 1.99 ms.
	if math.Abs(got[0].P50-1.5) > 1e-9 || math.Abs(got[0].P99-1.99) > 1e-9 {
		t.Errorf("p50 %v p99 %v, want 1.5 and 1.99", got[0].P50, got[0].P99)
	}
	got = stageLatencies(map[string]stageHist{}, page(4, 4, 4))
	if len(got) != 2 || got[0].Stage != "decode" || got[1].Side != "worker" || got[1].Count != 8 {
		t.Errorf("stages %+v: want decode then the worker's queue, its groups summed (8)", got)
	}
	if q := bucketQuantile(0.99, []float64{0.001, math.Inf(1)}, []float64{1, 100}); q != 0.001 {
		t.Errorf("a rank in +Inf gives %v, want the highest finite bound", q)
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
