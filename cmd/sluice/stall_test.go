package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// stalledUpload starts a request declaring a large body, sends one byte of
// it and stalls; the channel receives the answer's status (-1: no answer).
func stalledUpload(t *testing.T, c *http.Client, url string, declared int64) (status chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(fmt.Errorf("test over")) })
	req, err := http.NewRequest(http.MethodPost, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = declared
	req.Header.Set("Content-Type", "application/json")
	status = make(chan int, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			status <- -1
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte("[")); err != nil {
		t.Fatal(err)
	}
	return status
}

// TestStalledUploadDoesNotShedGroup: one connection that declares a 4 MiB
// body and stalls after a byte must not make the group shed anyone (the
// gateway used to count Content-Length/100 events as queued before reading
// the body, so every quote request got 503 "41943 events queued"), and the
// stalled request itself is answered 408 once the body timeout passes.
func TestStalledUploadDoesNotShedGroup(t *testing.T) {
	for _, mode := range []string{"h1", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			st := stackWith(t, func(cfg *devConfig) { cfg.gateway.opts.BodyTimeout = 2 * time.Second })
			c := clients()[mode]
			url := "http://" + st.gw.Addr() + "/v1/events/quote"
			stalled := stalledUpload(t, clients()[mode], url, 4<<20)
			time.Sleep(100 * time.Millisecond) // let the stalled request reach admission
			for i := 0; i < 20; i++ {
				resp, body := post(t, c, url, "application/json", quoteJSON("AAPL", 1, 1.01), "Sluice-Priority", "low")
				if resp.StatusCode != http.StatusAccepted {
					t.Fatalf("request %d beside a stalled upload: %d %s", i, resp.StatusCode, body)
				}
			}
			select {
			case code := <-stalled:
				if code != http.StatusRequestTimeout {
					t.Fatalf("stalled upload answered %d, want 408", code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("stalled upload still open 10 s after it stalled: no body timeout")
			}
		})
	}
}

// TestSlowBodyMinRate: a large body that keeps arriving at more than the
// minimum rate is not cut by the body timeout.
func TestSlowBodyMinRate(t *testing.T) {
	st := stackWith(t, func(cfg *devConfig) {
		cfg.gateway.opts.BodyTimeout = 500 * time.Millisecond
		cfg.gateway.opts.BodyMinRate = 64 << 10
	})
	url := "http://" + st.gw.Addr() + "/v1/events/quote"
	var b strings.Builder
	for b.Len() < 200<<10 {
		b.WriteString(quoteJSON("AAPL", 1, 1.01))
		b.WriteByte('\n')
	}
	body := b.String()
	pr, pw := io.Pipe()
	go func() {
		// 200 KiB in 16 KiB pieces every 100 ms: 160 KiB/s, over 1.2 s.
		for off := 0; off < len(body); off += 16 << 10 {
			if _, err := pw.Write([]byte(body[off:min(off+16<<10, len(body))])); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, url, pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := clients()["h2c"].Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("slow but steady body: %d %s", resp.StatusCode, out)
	}
}
