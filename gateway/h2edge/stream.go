package h2edge

import (
	"context"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// exchange is what one request needs besides its http.Request, in one
// allocation.
type exchange struct {
	st   stream
	rw   responseWriter
	body requestBody
}

// stream is one request and its answer. Its fields are guarded by the
// connection's mu; cond (on that mu) wakes its handler when body bytes,
// window or an end arrive.
type stream struct {
	cc   *conn
	id   uint32
	cond sync.Cond

	remoteClosed bool // END_STREAM received (or reset)
	localClosed  bool // END_STREAM sent (or reset)
	reset        bool
	handlerDone  bool
	waiting      bool // the handler waits for send window

	sendWindow  int64
	recvWindow  int32
	recvUnacked int32

	declLen    int64 // content-length, -1 if none
	bodyBytes  int64 // DATA received
	body       []byte
	bodyOff    int
	bodyEOF    bool
	bodyErr    error
	bodyClosed bool
	hasBody    bool

	answered bool // a final status was sent

	fast *FastStream // set on a stream served by a FastExchange

	cancel    context.CancelFunc
	timer     *time.Timer // write deadline
	deadline  time.Time
	rtimer    *time.Timer // read deadline
	rdeadline time.Time
	rexpired  bool
}

func (cc *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 != 1 {
		return cc.connErr("headers_even", http2.ErrCodeProtocol)
	}
	if st := cc.streams[id]; st != nil {
		if st.remoteClosed {
			return cc.streamErr("headers_half_closed", id, http2.ErrCodeStreamClosed)
		}
		// Trailers: they end the stream and carry no pseudo-header.
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			return cc.streamErr("trailers_not_ended", id, http2.ErrCodeProtocol)
		}
		return cc.endRemote(st)
	}
	if id <= cc.maxStreamID {
		return cc.connErr("stream_went_down", http2.ErrCodeProtocol)
	}
	cc.maxStreamID = id
	if f.HasPriority() && f.Priority.StreamDep == id {
		return cc.streamErr("priority", id, http2.ErrCodeProtocol)
	}
	if uint32(len(cc.streams)) >= cc.opts.MaxConcurrentStreams && !cc.resetAbandoned(false) {
		code := http2.ErrCodeProtocol
		if cc.unacked > 0 {
			code = http2.ErrCodeRefusedStream
		}
		return cc.streamErr("over_max_streams", id, code)
	}
	if cc.handlers >= 4*int(cc.opts.MaxConcurrentStreams) {
		cc.count("conn_ENHANCE_YOUR_CALM_too_many_handlers")
		return errCalm
	}
	if cc.opts.Fast != nil && !f.Truncated {
		if method, path, ok := fastPseudo(f); ok {
			if x := cc.opts.Fast.Claim(method, path); x != nil {
				if taken, err := cc.beginFast(f, x, method, path); taken || err != nil {
					return err
				}
			}
		}
	}
	req, err := cc.newRequest(f)
	if err != nil {
		return err
	}
	x := &exchange{}
	st := &x.st
	*st = stream{cc: cc, id: id, sendWindow: cc.initSendWin, recvWindow: cc.opts.InitialWindowSize,
		declLen: req.ContentLength, hasBody: !f.StreamEnded()}
	if !st.hasBody {
		st.declLen = -1
		if req.ContentLength > 0 {
			return cc.streamErr("content_length_mismatch", id, http2.ErrCodeProtocol)
		}
	}
	st.cond.L = &cc.mu
	st.remoteClosed = f.StreamEnded()
	cc.streams[id] = st
	if cc.idle != nil && len(cc.streams) == 1 {
		cc.idle.Stop()
	}
	handler := cc.handler
	switch {
	case f.Truncated:
		handler = http.HandlerFunc(headerTooLong)
	}
	ctx, cancel := context.WithCancel(cc.ctx)
	st.cancel = cancel
	if st.hasBody {
		x.body.st = st
		req.Body = &x.body
	} else {
		req.Body = http.NoBody
	}
	r := req.WithContext(ctx)
	rw := &x.rw
	rw.st, rw.req = st, r
	if cc.opts.WriteTimeout > 0 {
		st.setDeadline(time.Now().Add(cc.opts.WriteTimeout))
	}
	if cc.opts.ReadTimeout > 0 && st.hasBody {
		st.setReadDeadline(time.Now().Add(cc.opts.ReadTimeout))
	}
	cc.handlers++
	go cc.runHandler(handler, rw, r)
	return nil
}

func headerTooLong(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "request header fields too large", http.StatusRequestHeaderFieldsTooLarge)
}

// newRequest builds the request of a HEADERS frame, or the stream error
// that refuses it.
func (cc *conn) newRequest(f *http2.MetaHeadersFrame) (_ http.Request, err error) {
	bad := http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
	defer func() {
		if err != nil {
			cc.count("stream_PROTOCOL_ERROR_bad_path_method")
		}
	}()
	var method, scheme, authority, path, protocol string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":path":
			path = hf.Value
		case ":protocol":
			// Extended CONNECT (RFC 8441, 4), when advertised: only on a
			// CONNECT, which then names its target as other methods do.
			if !cc.opts.EnableConnectProtocol || hf.Value == "" {
				return http.Request{}, bad
			}
			protocol = hf.Value
		default:
			return http.Request{}, bad
		}
	}
	tunnel := method == "CONNECT" && protocol == ""
	if tunnel {
		if path != "" || scheme != "" || authority == "" {
			return http.Request{}, bad
		}
	} else if method == "" || path == "" || (scheme != "http" && scheme != "https") ||
		(protocol != "" && method != "CONNECT") {
		return http.Request{}, bad
	}
	regular := f.RegularFields()
	header := make(http.Header, len(regular))
	values := make([]string, len(regular)) // one backing array for the usual one value a field
	declLen := int64(-1)
	for _, hf := range regular {
		if !checkField(hf.Name, hf.Value, &declLen) {
			return http.Request{}, bad
		}
		k := cc.canonical(hf.Name)
		if vv, ok := header[k]; ok {
			header[k] = append(vv, hf.Value)
		} else {
			i := len(header)
			values[i] = hf.Value
			header[k] = values[i : i+1 : i+1]
		}
	}
	if protocol != "" {
		header[":protocol"] = []string{protocol}
	}
	if authority == "" {
		authority = header.Get("Host")
	}
	var u *url.URL
	requestURI := path
	if tunnel {
		u, requestURI = &url.URL{Host: authority}, authority
	} else {
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return http.Request{}, bad
		}
	}
	req := http.Request{Method: method, URL: u, Proto: "HTTP/2.0", ProtoMajor: 2, Header: header,
		Host: authority, RequestURI: requestURI, RemoteAddr: cc.remote, ContentLength: declLen}
	if scheme == "https" {
		req.TLS = cc.tls
	}
	if f.StreamEnded() && declLen < 0 {
		req.ContentLength = 0
	}
	return req, nil
}

// checkField refuses the connection-specific fields, te other than
// trailers and a content-length that is not a number or differs from one
// before (kept in declLen).
func checkField(name, value string, declLen *int64) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return false
	case "te":
		return value == "trailers"
	case "content-length":
		n, err := strconv.ParseUint(value, 10, 63)
		if err != nil || (*declLen >= 0 && int64(n) != *declLen) {
			return false
		}
		*declLen = int64(n)
	}
	return true
}

// fastPseudo returns the method and path of a request the fast path may
// claim: a well-formed one with an http or https scheme, not CONNECT.
func fastPseudo(f *http2.MetaHeadersFrame) (method, path string, ok bool) {
	var scheme string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":path":
			path = hf.Value
		case ":authority":
		default:
			return "", "", false
		}
	}
	ok = method != "" && method != "CONNECT" && path != "" && path[0] == '/' && (scheme == "http" || scheme == "https")
	return method, path, ok
}

// fastFields checks a fast request's regular fields as newRequest does
// and adds them to h; it returns the declared content-length (-1: none).
func (cc *conn) fastFields(f *http2.MetaHeadersFrame, h http.Header) (int64, error) {
	declLen := int64(-1)
	for _, hf := range f.RegularFields() {
		if !checkField(hf.Name, hf.Value, &declLen) {
			cc.count("stream_PROTOCOL_ERROR_bad_path_method")
			return -1, http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		k := cc.canonical(hf.Name)
		h[k] = append(h[k], hf.Value)
	}
	return declLen, nil
}

// commonHeaders are canonical forms of the usual request field names,
// found without building a string.
var commonHeaders = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{"accept", "accept-encoding", "accept-language", "authorization", "cache-control",
		"content-encoding", "content-length", "content-type", "cookie", "host", "if-modified-since",
		"if-none-match", "last-event-id", "origin", "prefer", "referer", "te", "user-agent",
		"x-forwarded-for", "x-request-id", "idempotency-key", "ce-id", "ce-source", "ce-type",
		"ce-specversion", "ce-time", "ce-subject", "traceparent", "tracestate"} {
		m[k] = textproto.CanonicalMIMEHeaderKey(k)
	}
	return m
}()

// canonical returns the http.Header key for a field name, cached per
// connection (bounded).
func (cc *conn) canonical(name string) string {
	if k, ok := commonHeaders[name]; ok {
		return k
	}
	if k, ok := cc.canon[name]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(name)
	if cc.canon == nil {
		cc.canon = make(map[string]string)
	}
	if len(cc.canon) < 64 {
		cc.canon[name] = k
	}
	return k
}

// lowerName returns the HTTP/2 field name of an http.Header key, cached
// per connection (bounded).
func (cc *conn) lowerName(k string) string {
	if l, ok := cc.lower[k]; ok {
		return l
	}
	l := strings.ToLower(k)
	if cc.lower == nil {
		cc.lower = make(map[string]string)
	}
	if len(cc.lower) < 64 {
		cc.lower[k] = l
	}
	return l
}

// runHandler runs one request's handler and ends its stream.
func (cc *conn) runHandler(h http.Handler, rw *responseWriter, req *http.Request) {
	defer func() {
		p := recover()
		cc.mu.Lock()
		st := rw.st
		st.handlerDone = true
		if p != nil {
			if !st.reset {
				cc.resetStream(st.id, http2.ErrCodeInternal)
			}
		} else {
			cc.guard("finishing an answer", rw.finishLocked)
		}
		st.bodyClosed = true
		if n := int32(len(st.body) - st.bodyOff); n > 0 {
			// Unread: given back to the connection's window, which the
			// peer's other streams share.
			st.body, st.bodyOff = nil, 0
			cc.giveBack(nil, n)
		}
		st.cancel()
		cc.handlers--
		if cc.handlers == 0 {
			cc.handlersDone.Broadcast()
		}
		if !cc.inBurst {
			cc.flushLocked()
		}
		cc.mu.Unlock()
		if p != nil && p != http.ErrAbortHandler && cc.opts.Logger != nil {
			cc.opts.Logger.Error("h2edge: handler panic", "panic", p)
		}
	}()
	h.ServeHTTP(rw, req)
}

// setDeadline resets the stream at t (zero: never); mu held or st new.
func (st *stream) setDeadline(t time.Time) {
	st.deadline = t
	if st.timer != nil {
		st.timer.Stop()
	}
	if t.IsZero() {
		return
	}
	d := time.Until(t)
	if st.timer == nil {
		st.timer = time.AfterFunc(d, st.onDeadline)
	} else {
		st.timer.Reset(d)
	}
}

func (st *stream) onDeadline() {
	cc := st.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if st.reset || st.localClosed || st.deadline.IsZero() || time.Now().Before(st.deadline) {
		return
	}
	cc.count("write_timeout")
	cc.resetStream(st.id, http2.ErrCodeInternal)
	if cc.streams[st.id] != st {
		st.reset, st.localClosed = true, true
		st.cond.Broadcast()
	}
	if !cc.inBurst {
		cc.flushLocked()
	}
}

// setReadDeadline makes body reads that wait past t fail with
// os.ErrDeadlineExceeded (zero: no deadline); mu held or st new.
func (st *stream) setReadDeadline(t time.Time) {
	st.rdeadline, st.rexpired = t, false
	if st.rtimer != nil {
		st.rtimer.Stop()
	}
	if t.IsZero() {
		return
	}
	d := time.Until(t)
	if d <= 0 {
		st.rexpired = true
		st.cond.Broadcast()
		return
	}
	if st.rtimer == nil {
		st.rtimer = time.AfterFunc(d, st.onReadDeadline)
	} else {
		st.rtimer.Reset(d)
	}
}

func (st *stream) onReadDeadline() {
	cc := st.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if st.rdeadline.IsZero() || time.Now().Before(st.rdeadline) {
		return
	}
	st.rexpired = true
	st.cond.Broadcast()
}
