package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-dev/sluice/ops"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// startProcess runs `sluice args...` and returns the first log line that
// gives the ops listener's address (ops=host:port), parsed into its
// key=value pairs.
func startProcess(t *testing.T, args ...string) map[string]string {
	t.Helper()
	cmd := sluiceCmd(t, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	re := regexp.MustCompile(`\bops=(\S+)`)
	found := make(chan map[string]string, 1)
	var log bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if re.MatchString(sc.Text()) {
				kv := map[string]string{}
				for _, f := range strings.Fields(sc.Text()) {
					if k, v, ok := strings.Cut(f, "="); ok {
						kv[k] = v
					}
				}
				select {
				case found <- kv:
				default:
				}
			}
		}
		close(found)
	}()
	select {
	case kv, ok := <-found:
		if !ok {
			t.Fatalf("sluice %s exited before it listened:\n%s", strings.Join(args, " "), log.String())
		}
		return kv
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice %s: no ops address logged within 30s", strings.Join(args, " "))
	}
	return nil
}

// TestMetricsExposition reads /metrics of a running gateway and worker (two
// processes, as deployed) with Prometheus' own text parser, after a
// request-reply through both, and checks what Prometheus needs: every family
// has its help and a type, and every histogram has cumulative le buckets
// ending in +Inf whose count is the +Inf bucket. Every sluice_ family must be
// described in ops/catalog.go.
func TestMetricsExposition(t *testing.T) {
	_, url := opstest.RunNATS(t)
	if out, err := sluiceCmd(t, "refdata", "load", "--nats", url, "sample").CombinedOutput(); err != nil {
		t.Fatalf("refdata load: %v\n%s", err, out)
	}
	worker := startProcess(t, "worker", "--group", "quotes", "--nats", url, "--ops-listen", "127.0.0.1:0")
	gw := startProcess(t, "gateway", "--nats", url, "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0")
	opstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Post("http://"+gw["data"]+"/v1/events/quote", "application/json",
			strings.NewReader(quoteJSON("AAPL", 189.5, 189.57)))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("async publish: status %d", resp.StatusCode)
		}
		return nil
	})
	resp, body := post(t, clients()["h2c"], "http://"+gw["data"]+"/v1/events/quote", "application/json",
		quoteJSON("AAPL", 189.5, 189.57), "Prefer", "return=representation")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("request-reply: status %d: %s", resp.StatusCode, body)
	}

	gwFams := checkExposition(t, "gateway", scrape(t, gw["ops"]))
	wkFams := checkExposition(t, "worker", scrape(t, worker["ops"]))
	// What the rules in ops/prometheus/ read, with the observations made.
	for _, c := range []struct {
		fams   map[string]*dto.MetricFamily
		name   string
		labels map[string]string
		min    uint64
	}{
		{gwFams, "sluice_gateway_request_duration_seconds", map[string]string{"mode": "result"}, 1},
		{gwFams, "sluice_gateway_request_duration_seconds", map[string]string{"mode": "async"}, 1},
		{gwFams, "sluice_gateway_batch_events", nil, 2},
		{gwFams, "sluice_gateway_batch_bytes", nil, 2},
		{wkFams, "sluice_worker_batch_duration_seconds", map[string]string{"group": "quotes"}, 2},
		// Every stage of both sides, timed by the two requests (the async
		// one waits for no result and no reply).
		{gwFams, "sluice_gateway_stage_seconds", map[string]string{"stage": "admit"}, 2},
		{gwFams, "sluice_gateway_stage_seconds", map[string]string{"stage": "decode"}, 2},
		{gwFams, "sluice_gateway_stage_seconds", map[string]string{"stage": "batch_wait"}, 2},
		{gwFams, "sluice_gateway_stage_seconds", map[string]string{"stage": "publish"}, 2},
		{gwFams, "sluice_gateway_stage_seconds", map[string]string{"stage": "results"}, 1},
		{gwFams, "sluice_gateway_stage_seconds", map[string]string{"stage": "reply_transit"}, 1},
		{gwFams, "sluice_gateway_stage_seconds", map[string]string{"stage": "response_write"}, 2},
		{wkFams, "sluice_worker_stage_seconds", map[string]string{"group": "quotes", "stage": "transit"}, 2},
		{wkFams, "sluice_worker_stage_seconds", map[string]string{"group": "quotes", "stage": "queue"}, 2},
		{wkFams, "sluice_worker_stage_seconds", map[string]string{"group": "quotes", "stage": "validate_enrich"}, 2},
		{wkFams, "sluice_worker_stage_seconds", map[string]string{"group": "quotes", "stage": "publish"}, 2},
	} {
		if n := histCount(c.fams[c.name], c.labels); n < c.min {
			t.Errorf("%s%v: count %d, want >= %d", c.name, c.labels, n, c.min)
		}
	}
	for who, fams := range map[string]map[string]*dto.MetricFamily{"gateway": gwFams, "worker": wkFams} {
		if v := gaugeValue(fams["sluice_ready"], map[string]string{"check": "nats"}); v != 1 {
			t.Errorf("%s: sluice_ready{check=\"nats\"} = %v, want 1", who, v)
		}
	}
}

// matches tells whether m has every label of want.
func matches(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

func histCount(mf *dto.MetricFamily, labels map[string]string) uint64 {
	for _, m := range mf.GetMetric() {
		if matches(m, labels) {
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func gaugeValue(mf *dto.MetricFamily, labels map[string]string) float64 {
	for _, m := range mf.GetMetric() {
		if matches(m, labels) {
			return m.GetGauge().GetValue()
		}
	}
	return math.NaN()
}

// checkExposition parses text as Prometheus does and returns its families.
func checkExposition(t *testing.T, who string, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("%s: Prometheus' text parser: %v\n%s", who, err, text)
	}
	typed := map[string]string{}
	for _, l := range strings.Split(string(text), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			typed[f[2]] = f[3]
		}
	}
	for name, mf := range fams {
		if strings.TrimSpace(mf.GetHelp()) == "" {
			t.Errorf("%s: %s has no help", who, name)
		}
		if typ := typed[name]; typ == "" || typ == "untyped" {
			t.Errorf("%s: %s has no type (TYPE %q)", who, name, typ)
		}
		if _, ok := ops.LookupFamily(name); !ok && strings.HasPrefix(name, "sluice_") {
			t.Errorf("%s: %s is not described in ops/catalog.go: add its type and help there", who, name)
		}
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			b := h.GetBucket()
			if len(b) < 2 || !math.IsInf(b[len(b)-1].GetUpperBound(), 1) {
				t.Errorf("%s: %s%v: buckets do not end in +Inf: %v", who, name, m.GetLabel(), b)
				continue
			}
			for i := 1; i < len(b); i++ {
				if b[i].GetUpperBound() <= b[i-1].GetUpperBound() || b[i].GetCumulativeCount() < b[i-1].GetCumulativeCount() {
					t.Errorf("%s: %s%v: buckets not cumulative at le=%g", who, name, m.GetLabel(), b[i].GetUpperBound())
				}
			}
			if h.GetSampleCount() != b[len(b)-1].GetCumulativeCount() {
				t.Errorf("%s: %s%v: count %d, +Inf bucket %d", who, name, m.GetLabel(), h.GetSampleCount(), b[len(b)-1].GetCumulativeCount())
			}
		}
	}
	return fams
}

func scrape(t *testing.T, addr string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %d %v", addr, resp.StatusCode, err)
	}
	return b
}
