package stream_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/ops/opstest/chromium"
)

// TestBoardInChromium opens the live board (GET /ui/) in headless Chromium,
// driven over the DevTools protocol: the page shows the snapshot, then the
// live quotes and trades published during the test; a screenshot is saved
// to the path the test logs. Skipped where no Chromium is installed.
func TestBoardInChromium(t *testing.T) {
	bin := chromium.Find(t)
	e := newEnv(t, stream.Options{KeepAlive: time.Second})
	// A subscriber already there, so that the cache holds a value of AAPL
	// for the page's snapshot.
	holder := openSSE(t, client(protos[0], 0), e.base+"/v1/streams/quote?symbols=AAPL")
	holder.mustNext(t)
	e.settle()
	e.publishQuote("AAPL", 100)
	e.flushPub()
	holder.mustNext(t)

	page := chromium.Open(t, bin, e.base+"/ui/?symbols=AAPL,MSFT", 1100, 360)
	type boardState struct {
		Snapshot, Events int
		Live             map[string]bool
		Bid, Trade       string
	}
	var st boardState
	read := func() boardState {
		var s boardState
		v := page.Eval(t, `JSON.stringify({Snapshot: sluiceBoard.snapshot, Events: sluiceBoard.events, Live: sluiceBoard.live,
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
	path := page.SaveScreenshot(t, "", "sluice-board")
	t.Logf("board %+v; screenshot saved to %s", st, path)
}
