package h2ws

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
)

// Transport is the RoundTripper of a websocket.DialOptions.HTTPClient that
// opens the WebSocket over HTTP/2: the library's upgrade request goes to H2
// as an extended CONNECT (RFC 8441, 4), and its 200 comes back as the 101
// the library checks, with a body it writes the client's frames to.
type Transport struct {
	// H2 sends the CONNECT: an HTTP/2 RoundTripper that passes the
	// :protocol field, such as golang.org/x/net/http2's Transport (with
	// AllowHTTP and a plain dialer for h2c). Its server must advertise
	// SETTINGS_ENABLE_CONNECT_PROTOCOL, or the request fails.
	H2 http.RoundTripper
}

// RoundTrip sends req, a WebSocket upgrade built by websocket.Dial, as an
// extended CONNECT. The stream outlives req's context once answered (the
// library cancels that context when Dial returns); closing the Conn ends
// it. An answer other than 200 is returned as it is.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Header.Get("Sec-WebSocket-Key")
	ctx, cancel := context.WithCancel(context.WithoutCancel(req.Context()))
	stop := context.AfterFunc(req.Context(), cancel)
	pr, pw := io.Pipe()
	cr := req.Clone(ctx)
	cr.Method = http.MethodConnect
	cr.Body, cr.ContentLength, cr.GetBody = pr, -1, nil
	for _, k := range []string{"Connection", "Upgrade", "Sec-Websocket-Key"} {
		delete(cr.Header, k)
	}
	cr.Header[":protocol"] = []string{Protocol}
	resp, err := t.H2.RoundTrip(cr)
	if !stop() {
		// req's context ended during the handshake.
		err = fmt.Errorf("opening a WebSocket over HTTP/2: %w", context.Cause(req.Context()))
		if resp != nil {
			_ = resp.Body.Close()
		}
		resp = nil
	}
	if err != nil {
		_ = pw.Close()
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_ = pw.Close()
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
		return resp, nil
	}
	resp.StatusCode, resp.Status = http.StatusSwitchingProtocols, "101 Switching Protocols"
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", Protocol)
	resp.Header.Set("Sec-WebSocket-Accept", acceptKey(key))
	resp.Body = &stream{ReadCloser: resp.Body, w: pw, cancel: cancel}
	return resp, nil
}

// acceptKey is RFC 6455's Sec-WebSocket-Accept for key.
func acceptKey(key string) string {
	h := sha1.New()
	_, _ = io.WriteString(h, key)
	_, _ = io.WriteString(h, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// stream is the client's side of the WebSocket's stream: the answer's
// body to read, the request's to write.
type stream struct {
	io.ReadCloser
	w      *io.PipeWriter
	cancel context.CancelFunc
}

func (s *stream) Write(p []byte) (int, error) { return s.w.Write(p) }

// Close ends the client's side (END_STREAM) and the stream.
func (s *stream) Close() error {
	_ = s.w.Close()
	err := s.ReadCloser.Close()
	s.cancel()
	return err
}

// cancelBody ends the request's context with the answer's body.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
