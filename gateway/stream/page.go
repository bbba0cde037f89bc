package stream

import (
	_ "embed"
	"net/http"
)

//go:embed page.html
var page []byte

// Page returns the handler of the live board: one self-contained HTML page
// (no external assets) that subscribes to the quote and trade streams of
// the symbols in its query (?symbols=AAPL,MSFT; default every symbol) with
// EventSource, and shows bid, ask, mid, spread, last trade, updates per
// second and the conflated count of each. The gateway serves it at GET /ui/.
func (h *Hub) Page() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hd := w.Header()
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Cache-Control", "no-cache")
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		_, _ = w.Write(page)
	})
}
