package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestSubPrintsEnrichedEvents runs `sluice sub quote.BRK.B --count 1`
// against a stack and publishes a quote: the command prints it as one JSON
// line and exits 0.
func TestSubPrintsEnrichedEvents(t *testing.T) {
	st := stack(t)
	cmd := sluiceCmd(t, "sub", "--nats", st.nats.ClientURL(), "--count", "1", "quote.BRK.B")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	// The subscription is in place once the command logs it; until then
	// publish repeatedly (the command exits after the first event).
	go func() { _, _ = bufio.NewReader(stderr).ReadString(0) }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("sluice sub printed nothing")
			}
			var ev struct {
				Type    string `json:"type"`
				Subject string `json:"subject"`
				Data    struct {
					Mid float64 `json:"mid"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Subject != "BRK.B" || ev.Data.Mid == 0 {
				t.Fatalf("line %q: %+v %v", line, ev, err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("sluice sub exited with %v", err)
			}
			return
		case <-tick.C:
			resp, _ := post(t, clients()["h2c"], "http://"+st.gw.Addr()+"/v1/events/quote", "application/json", quoteJSON("BRK.B", 452.1, 452.2))
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d", resp.StatusCode)
			}
		case <-deadline:
			t.Fatal("no event within 10s")
		}
	}
}

// TestSubHTTP runs `sluice sub --http URL quote.BRK.B --count 2` against a
// stack's gateway while quotes are published through it: the command
// prints them as JSON lines with the gateway's per-symbol sequence and
// exits 0.
func TestSubHTTP(t *testing.T) {
	st := stack(t)
	cmd := sluiceCmd(t, "sub", "--http", "http://"+st.gw.Addr(), "--count", "2", "quote.BRK.B")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	var prev float64
	for n := 0; n < 2; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("sluice sub --http printed %d lines", n)
			}
			var ev struct {
				Subject string  `json:"subject"`
				Seq     float64 `json:"sluiceseq"`
				Token   string  `json:"sluicetoken"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Subject != "BRK.B" || ev.Seq <= prev || ev.Token == "" {
				t.Fatalf("line %q: %+v %v", line, ev, err)
			}
			prev = ev.Seq
			n++
		case <-tick.C:
			resp, _ := post(t, clients()["h2c"], "http://"+st.gw.Addr()+"/v1/events/quote", "application/json", quoteJSON("BRK.B", 452.1, 452.2))
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d", resp.StatusCode)
			}
		case <-deadline:
			t.Fatal("no events within 10s")
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sluice sub --http exited with %v", err)
	}
}
