package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxLine bounds one NDJSON line a [Reader] reads.
const maxLine = 1 << 20

// Reader reads a stream from a gateway as NDJSON, one JSON object a line:
// enriched events (with sluiceseq, sluicereplaced and sluicetoken), the
// sluice.snapshot.end marker and the final sluice.stream.end event.
// `sluice sub --http` is built on it.
type Reader struct {
	body io.ReadCloser
	br   *bufio.Reader
	sc   *bufio.Scanner
}

// Dial opens GET base/v1/streams/{typ}?symbols=...&extra as NDJSON with hc
// (http.DefaultClient when nil). A status other than 200 is an error
// carrying the problem's detail.
func Dial(ctx context.Context, hc *http.Client, base, typ string, symbols []string, extra url.Values) (*Reader, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("symbols", strings.Join(symbols, ","))
	u := strings.TrimSuffix(base, "/") + "/v1/streams/" + url.PathEscape(typ) + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("subscribing: %w", err)
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("subscribing to %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var p struct {
			Title, Detail string
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = json.Unmarshal(b, &p)
		return nil, fmt.Errorf("subscribing to %s: %s: %s %s", u, resp.Status, p.Title, p.Detail)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &Reader{body: resp.Body, br: br, sc: sc}, nil
}

// Next returns the next line (keep-alive empty lines skipped); it is valid
// until the following call. At the end of the stream it returns io.EOF.
func (r *Reader) Next() ([]byte, error) {
	for r.sc.Scan() {
		if len(r.sc.Bytes()) > 0 {
			return r.sc.Bytes(), nil
		}
	}
	if err := r.sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the stream: %w", err)
	}
	return nil, io.EOF
}

// Buffered tells whether more lines may be read without waiting (a hint
// for when to flush what was printed).
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Close ends the subscription.
func (r *Reader) Close() error { return r.body.Close() }
