// Package chromium drives headless Chromium over the DevTools protocol, for
// the tests that look at sluice's pages in a real browser (the live board
// of gateway/stream, the ops dashboard). It is a test helper: a test that
// cannot find or start Chromium is skipped with a message saying how to
// install it (Debian: apt-get install -y chromium; .ci/run does).
package chromium

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sluice-dev/sluice/ops/opstest"
)

// Find returns the path of a Chromium binary: $SLUICE_CHROMIUM, else the
// first of chromium, chromium-browser, google-chrome and
// google-chrome-stable on PATH. It skips t where there is none.
func Find(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SLUICE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found (chromium, chromium-browser, google-chrome, or SLUICE_CHROMIUM): the browser test skips; apt-get install -y chromium (.ci/run does)")
	return ""
}

// Page is one tab of a headless Chromium started by [Open], driven over
// the DevTools protocol. Its methods fail the test on a protocol error.
type Page struct {
	mu   sync.Mutex
	conn *websocket.Conn
	id   int
}

// Open starts headless Chromium (the binary at bin, from [Find]) with a
// window of width × height pixels, navigates its tab to url and returns
// it. Chromium and its helper processes are killed, and its profile folder
// removed, when the test ends. It skips t when Chromium cannot start here.
func Open(t testing.TB, bin, url string, width, height int) *Page {
	t.Helper()
	// Not t.TempDir: Chromium's helper processes may still write there as
	// the test ends, and a failed removal would fail the test.
	profile, err := os.MkdirTemp("", "sluice-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir="+profile, fmt.Sprintf("--window-size=%d,%d", width, height), "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers end with it
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(profile)
		t.Skipf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = os.RemoveAll(profile)
	})
	wsRe := regexp.MustCompile(`DevTools listening on ws://([^/\s]+)/`)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := wsRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		close(addr)
	}()
	var host string
	select {
	case a, ok := <-addr:
		if !ok {
			t.Skipf("%s exited before it listened (cannot run here?)", bin)
		}
		host = a
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no DevTools address within 60s", bin)
	}
	var ws string
	opstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get("http://" + host + "/json/list")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var targets []struct{ Type, WebSocketDebuggerURL string }
		if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
			return err
		}
		for _, tg := range targets {
			if tg.Type == "page" {
				ws = tg.WebSocketDebuggerURL
				return nil
			}
		}
		return fmt.Errorf("no page target in %v", targets)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, ws, nil)
	if err != nil {
		t.Fatalf("DevTools websocket %s: %v", ws, err)
	}
	conn.SetReadLimit(64 << 20) // screenshots
	t.Cleanup(func() { _ = conn.CloseNow() })
	p := &Page{conn: conn}
	p.Call(t, "Page.enable", nil, nil)
	p.Call(t, "Page.navigate", map[string]any{"url": url}, nil)
	return p
}

// Call sends one DevTools call and decodes its result into result (nil:
// ignored), skipping the events and replies in between.
func (p *Page) Call(t testing.TB, method string, params, result any) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.id++
	msg, _ := json.Marshal(map[string]any{"id": p.id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	for {
		_, b, err := p.conn.Read(ctx)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		var reply struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &reply); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if reply.ID != p.id {
			continue // an event, or an earlier call's reply
		}
		if reply.Error != nil {
			t.Fatalf("%s: %s", method, reply.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(reply.Result, result); err != nil {
				t.Fatalf("%s result: %v", method, err)
			}
		}
		return
	}
}

// Eval evaluates a JavaScript expression in the page and returns its value,
// or nil when it threw (the page is still loading, say).
func (p *Page) Eval(t testing.TB, expr string) any {
	t.Helper()
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	p.Call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		return nil
	}
	return r.Result.Value
}

// Text is [Page.Eval] of an expression whose value is a string ("" if not).
func (p *Page) Text(t testing.TB, expr string) string {
	t.Helper()
	s, _ := p.Eval(t, expr).(string)
	return s
}

// Number is [Page.Eval] of an expression whose value is a number (0 if
// not).
func (p *Page) Number(t testing.TB, expr string) float64 {
	t.Helper()
	v, _ := p.Eval(t, expr).(float64)
	return v
}

// Screenshot returns a PNG of the whole page, beyond the window too.
func (p *Page) Screenshot(t testing.TB) []byte {
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	p.Call(t, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) == 0 {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
	}
	return png
}

// SaveScreenshot writes [Page.Screenshot] to path, or when path is empty
// to a new file named after prefix in the temporary folder, and returns
// the path written.
func (p *Page) SaveScreenshot(t testing.TB, path, prefix string) string {
	t.Helper()
	png := p.Screenshot(t)
	if path == "" {
		f, err := os.CreateTemp("", strings.TrimSuffix(prefix, "-")+"-*.png")
		if err != nil {
			t.Fatal(err)
		}
		path = f.Name()
		_ = f.Close()
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
