package stream

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

// request is a parsed GET /v1/streams/{type}.
type request struct {
	kind     schemas.Kind
	all      bool     // symbols=*
	symbols  []string // without duplicates, in the order given
	snapshot bool
	maxRate  float64 // quotes per second per symbol; 0: unlimited
	// A resume: at most one of token, since and sinceSeq is set.
	resume   bool
	token    Token
	since    time.Time
	sinceSeq uint64
	// fallback asks for a snapshot when a resume cannot be served.
	fallback bool
}

// maxSymbolLen bounds one symbol.
const maxSymbolLen = 64

// maxRateLimit is the highest max_rate accepted.
const maxRateLimit = 1000

// parseQuery reads the path's type, the query and the Last-Event-ID header
// of a subscription. Its errors are *StatusError (404 for an unknown type,
// 400 otherwise).
func parseQuery(typ string, q url.Values, lastEventID string, maxSymbols int) (request, error) {
	r := request{snapshot: true}
	k, ok := schemas.ParseKind(typ)
	if !ok {
		return r, problemf(http.StatusNotFound, "Unknown type", fmt.Sprintf("no stream of type %q: the types are quote and trade", typ))
	}
	r.kind = k
	for name := range q {
		switch name {
		case "symbols", "snapshot", "max_rate", "since", "since_seq", "last_event_id", "fallback":
		default:
			if !strings.HasPrefix(name, "_") {
				return r, badQuery("unknown parameter %q: the parameters are symbols, snapshot, max_rate, since, since_seq, last_event_id and fallback", name)
			}
		}
		if len(q[name]) > 1 && !strings.HasPrefix(name, "_") {
			return r, badQuery("parameter %q given %d times", name, len(q[name]))
		}
	}
	if err := r.parseSymbols(q.Get("symbols"), maxSymbols); err != nil {
		return r, err
	}
	if v := q.Get("snapshot"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return r, badQuery("snapshot=%q: want true or false", v)
		}
		r.snapshot = b
	}
	if v := q.Get("max_rate"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0 && f <= maxRateLimit) {
			return r, badQuery("max_rate=%q: want updates per second per symbol, above 0 and at most %d", v, maxRateLimit)
		}
		r.maxRate = f
	}
	switch v := q.Get("fallback"); v {
	case "":
	case "snapshot":
		r.fallback = true
	default:
		return r, badQuery("fallback=%q: the only fallback is snapshot", v)
	}
	return r, r.parseResume(q, lastEventID)
}

func (r *request) parseSymbols(v string, maxSymbols int) error {
	if v == "" {
		return badQuery("symbols is required: a comma-separated list (symbols=AAPL,MSFT) or symbols=* for every symbol")
	}
	if v == "*" {
		r.all = true
		return nil
	}
	n := strings.Count(v, ",") + 1
	if n > maxSymbols {
		return badQuery("%d symbols: at most %d in one request (--stream-max-symbols), or symbols=* for all", n, maxSymbols)
	}
	r.symbols = make([]string, 0, n)
	for s := range strings.SplitSeq(v, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			return badQuery("symbols=%q: an empty symbol", v)
		case s == "*":
			return badQuery("symbols=*: the wildcard stands alone")
		case len(s) > maxSymbolLen:
			return badQuery("symbol %.16q...: longer than %d bytes", s, maxSymbolLen)
		case strings.ContainsFunc(s, func(c rune) bool { return c < ' ' || c == 0x7f }):
			return badQuery("symbol %q: control characters", s)
		}
		if !contains(r.symbols, s) {
			r.symbols = append(r.symbols, s)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (r *request) parseResume(q url.Values, lastEventID string) error {
	given := 0
	if lastEventID == "" {
		lastEventID = q.Get("last_event_id")
	}
	if lastEventID != "" {
		t, err := ParseToken(lastEventID)
		if err != nil {
			return badQuery("Last-Event-ID: %v", err)
		}
		r.token = t
		given++
	}
	if v := q.Get("since_seq"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badQuery("since_seq=%q: want a stream sequence (an unsigned integer)", v)
		}
		r.sinceSeq = n
		given++
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return badQuery("since=%q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", v)
		}
		r.since = t
		given++
	}
	if given > 1 {
		return badQuery("Last-Event-ID, since_seq and since exclude each other")
	}
	r.resume = given == 1
	return nil
}

func badQuery(format string, args ...any) *StatusError {
	return &StatusError{Status: http.StatusBadRequest, Title: "Bad subscription", Detail: fmt.Sprintf(format, args...)}
}
