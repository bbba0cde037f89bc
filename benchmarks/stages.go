package benchmarks

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Where a request's latency goes: the gateway's and the workers' per-stage
// histograms (sluice_gateway_stage_seconds, sluice_worker_stage_seconds),
// read from their /metrics at the start and end of a measured window, and
// the window's quantiles computed from the difference of the le buckets as
// Prometheus' histogram_quantile computes them.

// StageLatency is one stage's latency over a measured window.
type StageLatency struct {
	// Side is gateway or worker; Stage the stage label.
	Side  string `json:"side"`
	Stage string `json:"stage"`
	// Count is the observations in the window (requests, batches or reply
	// frames: see the metrics' help); P50 and P99 are in milliseconds.
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
}

// stageOrder is the order of a request's trip: the gateway's stages up to
// the publish, the worker's, then the gateway's again.
var stageOrder = []string{
	"gateway/admit", "gateway/decode", "gateway/batch_wait", "gateway/publish",
	"worker/transit", "worker/queue", "worker/validate_enrich", "worker/publish",
	"gateway/reply_transit", "gateway/results", "gateway/response_write",
}

// stageHist is one stage's cumulative bucket counts by le bound.
type stageHist map[float64]float64

// scrapeStages reads the stage histograms of the processes whose ops
// listeners are ops, summed by side and stage (a worker's groups added
// up).
func scrapeStages(ops []string) (map[string]stageHist, error) {
	out := map[string]stageHist{}
	c := http.Client{Timeout: 5 * time.Second}
	for _, addr := range ops {
		resp, err := c.Get("http://" + addr + "/metrics")
		if err != nil {
			return nil, fmt.Errorf("reading stage histograms: %w", err)
		}
		err = parseStages(bufio.NewScanner(resp.Body), out)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseStages adds the stage histograms' bucket lines of a Prometheus text
// page to out, keyed "side/stage".
func parseStages(sc *bufio.Scanner, out map[string]stageHist) error {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var side string
		switch {
		case strings.HasPrefix(line, "sluice_gateway_stage_seconds_bucket{"):
			side = "gateway"
		case strings.HasPrefix(line, "sluice_worker_stage_seconds_bucket{"):
			side = "worker"
		default:
			continue
		}
		_, labels, _ := strings.Cut(line, "{")
		labels, value, ok := strings.Cut(labels, "} ")
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		stage, le := label(labels, "stage"), label(labels, "le")
		bound, lerr := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			bound, lerr = math.Inf(1), nil
		}
		if !ok || err != nil || lerr != nil || stage == "" {
			return fmt.Errorf("unreadable metrics line %q", line)
		}
		key := side + "/" + stage
		if out[key] == nil {
			out[key] = stageHist{}
		}
		out[key][bound] += v
	}
	return sc.Err()
}

// label returns the value of name in a label list (a="x",b="y").
func label(labels, name string) string {
	_, v, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

// stageLatencies returns each stage's count and quantiles between two
// scrapes, in stageOrder (stages without observations left out).
func stageLatencies(before, after map[string]stageHist) []StageLatency {
	var out []StageLatency
	keys := slices.Sorted(maps.Keys(after))
	slices.SortStableFunc(keys, func(a, b string) int { return stageRank(a) - stageRank(b) })
	for _, key := range keys {
		h := after[key]
		bounds := make([]float64, 0, len(h))
		for b := range h {
			bounds = append(bounds, b)
		}
		slices.Sort(bounds)
		cum := make([]float64, len(bounds))
		for i, b := range bounds {
			cum[i] = h[b] - before[key][b]
		}
		if len(cum) == 0 || cum[len(cum)-1] <= 0 {
			continue
		}
		side, stage, _ := strings.Cut(key, "/")
		out = append(out, StageLatency{Side: side, Stage: stage, Count: uint64(cum[len(cum)-1]),
			P50: 1e3 * bucketQuantile(0.5, bounds, cum), P99: 1e3 * bucketQuantile(0.99, bounds, cum)})
	}
	return out
}

func stageRank(key string) int {
	if i := slices.Index(stageOrder, key); i >= 0 {
		return i
	}
	return len(stageOrder)
}

// bucketQuantile is Prometheus' histogram_quantile over cumulative counts
// cum at the ascending bounds (the last +Inf): linear within the bucket,
// the highest finite bound when the rank falls in +Inf.
func bucketQuantile(q float64, bounds, cum []float64) float64 {
	total := cum[len(cum)-1]
	rank := q * total
	i := 0
	for i < len(cum)-1 && cum[i] < rank {
		i++
	}
	if math.IsInf(bounds[i], 1) {
		if i == 0 {
			return 0
		}
		return bounds[i-1]
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = bounds[i-1], cum[i-1]
	}
	in := cum[i] - below
	if in <= 0 {
		return bounds[i]
	}
	return lower + (bounds[i]-lower)*(rank-below)/in
}

// stageWatch reads the stage histograms of a sluice system over a measured
// window.
type stageWatch struct {
	ops    []string
	before map[string]stageHist
	stages []StageLatency
	err    error
}

func (w *stageWatch) hook(start bool) {
	if len(w.ops) == 0 || w.err != nil {
		return
	}
	now, err := scrapeStages(w.ops)
	if err != nil {
		w.err = err
		return
	}
	if start {
		w.before = now
		return
	}
	w.stages = stageLatencies(w.before, now)
}

// formatStages writes the stage breakdown beside the generator's own p50
// and p99 (ms): one line.
func formatStages(genP50, genP99 float64, stages []StageLatency) string {
	var b strings.Builder
	fmt.Fprintf(&b, "generator p50 %.2f ms, p99 %.2f ms; stages p50/p99 ms:", genP50, genP99)
	for i, s := range stages {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s %s %s %.3f/%.3f", sep, s.Side, s.Stage, s.P50, s.P99)
	}
	return b.String()
}

// sluiceOps returns the ops listeners of a sluice system's gateway and
// workers.
func sluiceOps(sys *system) []string {
	var ops []string
	for _, c := range sys.procs {
		if c.ops != "" && (c == sys.edge || c.role == RoleWorker) {
			ops = append(ops, c.ops)
		}
	}
	return ops
}

// otlpSink returns the URL of the suite's OTLP/HTTP trace sink, starting
// it on first use: it reads and discards export requests, answering each
// with an empty (valid) ExportTraceServiceResponse, as a collector would.
func (s *suite) otlpSink() (string, error) {
	if s.sink != nil {
		return s.sink.URL, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("OTLP sink: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.sinkBytes.Add(n)
		s.sinkRequests.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.sink = &otlpSink{URL: "http://" + ln.Addr().String(), srv: srv}
	return s.sink.URL, nil
}

// otlpSink is the suite's trace sink.
type otlpSink struct {
	URL string
	srv *http.Server
}
