package composetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/ops/opstest"
)

// TestComposeObservability runs the stack with its observability profile
// (docker compose --profile observability up -d): the Prometheus image built
// here on scratch must find both gateways and every worker replica through
// Docker's DNS, scrape them all (each target up), load the rules and alerts
// of ops/prometheus/, and follow `--scale`: a quotes replica added later is
// scraped too.
func TestComposeObservability(t *testing.T) {
	if testing.Short() {
		t.Skip("compose test skipped in -short mode: it builds images and starts containers")
	}
	s := newStack(t)
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	promPort := ports[0]
	promImage := imageTag("prometheus")
	s.images = append(s.images, promImage)
	s.env = append(s.env, "SLUICE_PROMETHEUS_IMAGE="+promImage, "SLUICE_COMPOSE_PROMETHEUS_PORT="+strconv.Itoa(promPort))
	s.profiles = []string{"observability"}

	// The first build of Prometheus compiles it from its module: minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	msg, err := s.buildImages(ctx, "sluice", "nats", "prometheus")
	if err != nil {
		t.Fatalf("docker/build.sh: %v", err)
	}
	t.Log(msg)

	t0 := time.Now()
	if _, err := s.composeCmd(ctx, "up", "-d"); err != nil {
		t.Fatal(err)
	}
	size := stackSize(1)
	size["prometheus"] = 1
	opstest.CheckFor(t, 3*time.Minute, 500*time.Millisecond, func() error {
		return s.checkReady(ctx, size, "refdata")
	})
	t.Logf("stack healthy %v after `up -d` started", time.Since(t0).Round(100*time.Millisecond))

	prom := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	want := map[string]int{"gateway-a": 1, "gateway-b": 1, "quotes": 1, "trades": 1}
	opstest.CheckFor(t, 90*time.Second, 250*time.Millisecond, func() error { return checkTargets(ctx, prom, want) })

	var rules struct {
		Data struct {
			Groups []struct {
				Name  string
				Rules []struct{ Name, Type, Health string }
			}
		}
	}
	if err := getJSON(ctx, prom+"/api/v1/rules", &rules); err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, g := range rules.Data.Groups {
		groups = append(groups, g.Name)
		for _, r := range g.Rules {
			if r.Health == "err" {
				t.Errorf("rule %s of %s: health %s", r.Name, g.Name, r.Health)
			}
		}
	}
	if !slices.Contains(groups, "sluice-recording") || !slices.Contains(groups, "sluice-alerts") {
		t.Errorf("rule groups loaded: %v, want sluice-recording and sluice-alerts", groups)
	}

	// A replica added with --scale is found by the next DNS refresh.
	if _, err := s.composeCmd(ctx, "up", "-d", "--no-deps", "--scale", "quotes=2", "quotes"); err != nil {
		t.Fatal(err)
	}
	size["quotes"] = 2
	opstest.CheckFor(t, 90*time.Second, 500*time.Millisecond, func() error {
		return s.checkReady(ctx, size, "refdata")
	})
	want["quotes"] = 2
	opstest.CheckFor(t, 90*time.Second, 250*time.Millisecond, func() error { return checkTargets(ctx, prom, want) })

	// Every process scraped is connected to NATS, as Prometheus has it.
	opstest.CheckFor(t, 60*time.Second, 250*time.Millisecond, func() error {
		var q struct {
			Data struct {
				Result []struct {
					Metric map[string]string
					Value  [2]any
				}
			}
		}
		if err := getJSON(ctx, prom+`/api/v1/query?query=`+`sluice_ready%7Bcheck%3D%22nats%22%7D`, &q); err != nil {
			return err
		}
		ok := 0
		for _, r := range q.Data.Result {
			if r.Value[1] == "1" {
				ok++
			}
		}
		if ok != 5 {
			return fmt.Errorf("sluice_ready{check=\"nats\"} is 1 on %d processes, want 5 (2 gateways, 3 workers): %v", ok, q.Data.Result)
		}
		return nil
	})

	if err := s.down(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := s.leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("down -v left %v", left)
	}
}

// checkTargets reports nil when Prometheus' active targets are, per compose
// service, as many as want, every one up.
func checkTargets(ctx context.Context, prom string, want map[string]int) error {
	var tg struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string
				Health    string
				LastError string
				ScrapeURL string
			}
		}
	}
	if err := getJSON(ctx, prom+"/api/v1/targets?state=active", &tg); err != nil {
		return err
	}
	up := map[string]int{}
	var problems []string
	for _, a := range tg.Data.ActiveTargets {
		svc := a.Labels["service"]
		if svc == "" {
			continue // Prometheus itself
		}
		if a.Health != "up" {
			problems = append(problems, fmt.Sprintf("%s %s: %s %s", svc, a.ScrapeURL, a.Health, a.LastError))
			continue
		}
		up[svc]++
	}
	for svc, n := range want {
		if up[svc] != n {
			problems = append(problems, fmt.Sprintf("%s: %d targets up, want %d", svc, up[svc], n))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("prometheus targets: %s", strings.Join(problems, "; "))
	}
	return nil
}

// getJSON decodes the answer of GET url into v.
func getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decoding: %w", url, err)
	}
	return nil
}
