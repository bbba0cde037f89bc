package stream_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// TestBoardInChromium opens the live board (GET /ui/) in headless Chromium,
// driven over the DevTools protocol: the page shows the snapshot, then the
// live quotes and trades published during the test; a screenshot is saved
// to the path the test logs. Skipped where no Chromium is installed.
func TestBoardInChromium(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		t.Skip("no Chromium found (chromium, chromium-browser, google-chrome): apt-get install -y chromium to run the browser test")
	}
	e := newEnv(t, stream.Options{KeepAlive: time.Second})
	// A subscriber already there, so that the cache holds a value of AAPL
	// for the page's snapshot.
	holder := openSSE(t, client(protos[0], 0), e.base+"/v1/streams/quote?symbols=AAPL")
	holder.mustNext(t)
	e.settle()
	e.publishQuote("AAPL", 100)
	e.flushPub()
	holder.mustNext(t)

	cdp := startChromium(t, bin, e.base+"/ui/?symbols=AAPL,MSFT")
	type boardState struct {
		Snapshot, Events int
		Live             map[string]bool
		Bid, Trade       string
	}
	var st boardState
	read := func() boardState {
		var s boardState
		v := cdp.eval(t, `JSON.stringify({Snapshot: sluiceBoard.snapshot, Events: sluiceBoard.events, Live: sluiceBoard.live,
			Bid: (sluiceBoard.rows["AAPL"] ? sluiceBoard.rows["AAPL"].tr.cells[1].textContent : ""),
			Trade: (sluiceBoard.rows["MSFT"] ? sluiceBoard.rows["MSFT"].tr.cells[5].textContent : "")})`)
		if str, ok := v.(string); ok {
			_ = json.Unmarshal([]byte(str), &s)
		}
		return s
	}
	opstest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		if st = read(); st.Snapshot < 1 || !st.Live["quote"] || !st.Live["trade"] || st.Bid != "100.00" {
			return fmt.Errorf("board %+v: want the AAPL snapshot (bid 100.00) and both streams live", st)
		}
		return nil
	})
	for i := 101; i <= 120; i++ {
		e.publishQuote("AAPL", float64(i))
	}
	e.publishQuote("MSFT", 400)
	e.publishTrade("MSFT", 7)
	e.flushPub()
	opstest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		if st = read(); st.Bid != "120.00" || st.Trade != "10.00 × 7" || st.Events < 3 {
			return fmt.Errorf("board %+v: want AAPL bid 120.00 and the MSFT trade 10.00 × 7 live", st)
		}
		return nil
	})
	png := cdp.screenshot(t)
	path := filepath.Join(os.TempDir(), fmt.Sprintf("sluice-board-%d.png", time.Now().UnixNano()))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("board %+v; screenshot saved to %s", st, path)
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// cdp is a DevTools protocol connection to one page.
type cdp struct {
	c  *websocket.Conn
	id int
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://[^\s]+)`)

func startChromium(t *testing.T, bin, url string) *cdp {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
		"--user-data-dir="+t.TempDir(), "--window-size=1100,360", url)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("Chromium %s does not start: %v", bin, err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var browserWS string
	select {
	case browserWS = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("Chromium did not print its DevTools address within 60s")
	}
	host := strings.TrimPrefix(browserWS, "ws://")
	host = host[:strings.IndexByte(host, '/')]
	var pageWS string
	opstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get("http://" + host + "/json/list")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var targets []struct{ Type, URL, WebSocketDebuggerURL string }
		if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
			return err
		}
		for _, tg := range targets {
			if tg.Type == "page" && strings.Contains(tg.URL, "/ui/") {
				pageWS = tg.WebSocketDebuggerURL
				return nil
			}
		}
		return fmt.Errorf("no page target yet: %+v", targets)
	})
	c, _, err := websocket.Dial(context.Background(), pageWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &cdp{c: c}
}

// call sends one DevTools command and returns its result.
func (d *cdp) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	d.id++
	msg, _ := json.Marshal(map[string]any{"id": d.id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.c.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := d.c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		if json.Unmarshal(b, &resp) != nil || resp.ID != d.id {
			continue // an event
		}
		if resp.Error != nil {
			t.Fatalf("%s: %s", method, resp.Error.Message)
		}
		return resp.Result
	}
}

func (d *cdp) eval(t *testing.T, expr string) any {
	t.Helper()
	var r struct {
		Result struct{ Value any }
	}
	_ = json.Unmarshal(d.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}), &r)
	return r.Result.Value
}

func (d *cdp) screenshot(t *testing.T) []byte {
	t.Helper()
	var r struct{ Data string }
	if err := json.Unmarshal(d.call(t, "Page.captureScreenshot", map[string]any{"format": "png"}), &r); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	return png
}
