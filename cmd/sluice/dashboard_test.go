package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/ops/opstest/chromium"
)

// TestDashboardInChromium loads the ops listener's dashboard of a running
// `sluice dev` in headless Chromium (Debian's package; .ci/run installs it),
// under a little traffic, and checks that what the page shows moves and
// matches /metrics. It saves a screenshot and logs its path
// (SLUICE_DASHBOARD_SCREENSHOT chooses it). Without Chromium it skips.
func TestDashboardInChromium(t *testing.T) {
	chrome := chromium.Find(t)
	data, opsAddr := startDev(t)
	h1 := clients()["h1"]
	send := func(n int) {
		t.Helper()
		for i := range n {
			hdr := []string{}
			if i%2 == 0 {
				hdr = []string{"Prefer", "return=representation"}
			}
			resp, body := post(t, h1, "http://"+data+"/v1/events/quote", "application/json", quoteJSON("AAPL", 189.5, 189.57), hdr...)
			if resp.StatusCode/100 != 2 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		}
	}
	send(10)

	page := chromium.Open(t, chrome, "http://"+opsAddr+"/", 1400, 1500)
	opstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if n := page.Number(t, `window.sluiceDashboard ? window.sluiceDashboard.frames : 0`); n < 2 {
			return fmt.Errorf("%v frames shown", n)
		}
		return nil
	})
	shown := func(id string) float64 {
		t.Helper()
		s := page.Text(t, `document.getElementById(`+strconv.Quote(id)+`).textContent`)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return -1
		}
		return v
	}
	// With no traffic, the totals shown are /metrics' within a frame.
	matches := func(min float64) {
		t.Helper()
		opstest.CheckFor(t, 20*time.Second, 200*time.Millisecond, func() error {
			m := scrape(t, opsAddr)
			for id, name := range map[string]string{
				"requests-total":        "sluice_gateway_requests_total",
				"events-accepted-total": "sluice_gateway_events_accepted_total",
			} {
				want := sumFamily(m, name)
				if got := shown(id); got != want || got < min {
					return fmt.Errorf("#%s shows %v, /metrics has %s = %v (want at least %v)", id, got, name, want, min)
				}
			}
			return nil
		})
	}
	matches(10)
	before := shown("requests-total")

	// Under traffic the rate shown is positive; after it, the totals
	// moved by what was sent and still match.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			resp, err := h1.Post("http://"+data+"/v1/events/quote", "application/json", strings.NewReader(quoteJSON("MSFT", 410.1, 410.2)))
			if err == nil {
				resp.Body.Close()
			}
		}
	}()
	opstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if r := page.Text(t, `document.getElementById("requests-rate").textContent`); r == "–" || r == "0.00" {
			return fmt.Errorf("requests/s shown %q under traffic", r)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	send(10)
	matches(before + 10)

	// NATS is connected, and the request latency has quantiles.
	if s := page.Text(t, `document.getElementById("ready-nats").textContent`); s != "NATS connected" {
		t.Errorf("NATS state shown %q", s)
	}
	lat := page.Text(t, `[...document.querySelectorAll("#t-latency tr")].map(r => r.textContent).join("\n")`)
	if !regexp.MustCompile(`gateway_request_duration result.*\d+ (µs|ms)`).MatchString(lat) {
		t.Errorf("no p99 for the request-reply latency in:\n%s", lat)
	}

	path := os.Getenv("SLUICE_DASHBOARD_SCREENSHOT")
	if path == "" {
		path = filepath.Join(os.TempDir(), "sluice-dashboard.png")
	}
	page.SaveScreenshot(t, path, "")
	t.Logf("screenshot of the dashboard: %s", path)
}

// startDev runs `sluice dev` on free ports and returns its data and ops
// addresses, read from its banner.
func startDev(t *testing.T) (data, opsAddr string) {
	t.Helper()
	cmd := sluiceCmd(t, "dev", "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "warn")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	dataRe := regexp.MustCompile(`data API\s+http://(\S+)`)
	opsRe := regexp.MustCompile(`ops\s+http://([^/\s]+)/`)
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var d, o string
		for sc.Scan() {
			if m := dataRe.FindStringSubmatch(sc.Text()); m != nil {
				d = m[1]
			}
			if m := opsRe.FindStringSubmatch(sc.Text()); m != nil {
				o = m[1]
			}
			if d != "" && o != "" {
				found <- [2]string{d, o}
				d = ""
			}
		}
		close(found)
	}()
	select {
	case a, ok := <-found:
		if !ok {
			t.Fatalf("sluice dev exited before its banner:\n%s", stderr.String())
		}
		return a[0], a[1]
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice dev: no banner within 30s:\n%s", stderr.String())
	}
	return "", ""
}

// sumFamily sums the samples of family name in a /metrics text.
func sumFamily(text []byte, name string) float64 {
	var sum float64
	for _, line := range strings.Split(string(text), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			sum += v
		}
	}
	return sum
}

// TestDashboardFeedPerProcess reads one frame of the dashboard's feed from a
// gateway and a worker run apart: each page shows its own process's
// metrics, the worker's its batches and no gateway series.
func TestDashboardFeedPerProcess(t *testing.T) {
	_, url := opstest.RunNATS(t)
	if out, err := sluiceCmd(t, "refdata", "load", "--nats", url, "sample").CombinedOutput(); err != nil {
		t.Fatalf("refdata load: %v\n%s", err, out)
	}
	worker := startProcess(t, "worker", "--group", "quotes", "--nats", url, "--ops-listen", "127.0.0.1:0")
	gw := startProcess(t, "gateway", "--nats", url, "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0")
	names := func(addr string) map[string]bool {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/dashboard/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<22)
		for sc.Scan() {
			d, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var f struct{ Series, Hists []struct{ N string } }
			if err := json.Unmarshal([]byte(d), &f); err != nil {
				t.Fatalf("frame from %s: %v", addr, err)
			}
			m := map[string]bool{}
			for _, s := range append(f.Series, f.Hists...) {
				m[s.N] = true
			}
			return m
		}
		t.Fatalf("no frame from %s: %v", addr, sc.Err())
		return nil
	}
	w, g := names(worker["ops"]), names(gw["ops"])
	for _, c := range []struct {
		who  string
		got  map[string]bool
		name string
		want bool
	}{
		{"worker", w, "sluice_worker_batches_total", true},
		{"worker", w, "sluice_worker_batch_duration_seconds", true},
		{"worker", w, "sluice_ready", true},
		{"worker", w, "sluice_gateway_requests_total", false},
		{"gateway", g, "sluice_gateway_requests_total", true},
		{"gateway", g, "sluice_gateway_group_depth", true},
		{"gateway", g, "sluice_worker_batches_total", false},
	} {
		if c.got[c.name] != c.want {
			t.Errorf("%s's feed has %s: %v, want %v", c.who, c.name, c.got[c.name], c.want)
		}
	}
}
