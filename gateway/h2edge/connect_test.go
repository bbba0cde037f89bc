package h2edge

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fieldsBlock encodes name/value pairs as a header block.
func fieldsBlock(kv ...string) []byte {
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for i := 0; i+1 < len(kv); i += 2 {
		_ = e.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return b.Bytes()
}

// firstSettings reads the server's first SETTINGS frame.
func firstSettings(t *testing.T, c net.Conn, fr *http2.Framer) *http2.SettingsFrame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("first frame %v, want SETTINGS", f.Header())
	}
	return sf
}

// TestConnectProtocolSetting: SETTINGS_ENABLE_CONNECT_PROTOCOL is sent
// with EnableConnectProtocol, and only then.
func TestConnectProtocolSetting(t *testing.T) {
	for _, on := range []bool{false, true} {
		port := serveTest(t, http.HandlerFunc(specHandler), false, Options{EnableConnectProtocol: on})
		c, fr := rawConn(t, port)
		v, ok := firstSettings(t, c, fr).Value(http2.SettingEnableConnectProtocol)
		if ok != on || (on && v != 1) {
			t.Errorf("EnableConnectProtocol %v: ENABLE_CONNECT_PROTOCOL %d (sent: %v)", on, v, ok)
		}
	}
}

// TestExtendedConnect: a CONNECT with :protocol reaches the handler as
// net/http presents it, and its stream is full duplex: the handler answers
// 200 and echoes each DATA frame the client sends on while the client's
// side is still open, until the client ends it.
func TestExtendedConnect(t *testing.T) {
	got := make(chan string, 1)
	port := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.Header.Get(":protocol") + " " + r.URL.RequestURI() + " " + r.Host + " " + r.Proto +
			" " + r.Header.Get("Sec-Websocket-Version")
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		if err := rc.Flush(); err != nil {
			t.Error(err)
			return
		}
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(bytes.ToUpper(buf[:n]))
				if err := rc.Flush(); err != nil {
					t.Error(err)
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}), false, Options{EnableConnectProtocol: true})
	c, fr := rawConn(t, port)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
		BlockFragment: fieldsBlock(":method", "CONNECT", ":protocol", "websocket", ":scheme", "http",
			":path", "/chat?room=1", ":authority", "example.com", "sec-websocket-version", "13")}); err != nil {
		t.Fatal(err)
	}
	// next returns the stream's next HEADERS status or DATA payload.
	next := func() (status, data string, end bool) {
		t.Helper()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				return f.PseudoValue("status"), "", f.StreamEnded()
			case *http2.DataFrame:
				if f.StreamID == 1 && (len(f.Data()) > 0 || f.StreamEnded()) {
					return "", string(f.Data()), f.StreamEnded()
				}
			case *http2.RSTStreamFrame:
				t.Fatalf("stream reset: %v", f.ErrCode)
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY %v", f.ErrCode)
			}
		}
	}
	if st, _, end := next(); st != "200" || end {
		t.Fatalf("status %q (end %v), want 200 with the stream open", st, end)
	}
	if g := <-got; g != "CONNECT websocket /chat?room=1 example.com HTTP/2.0 13" {
		t.Errorf("handler saw %q", g)
	}
	for i, msg := range []string{"one", "two"} {
		if err := fr.WriteData(1, i == 1, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, d, end := next(); d != string(bytes.ToUpper([]byte(msg))) || end {
			t.Fatalf("echo %q (end %v), want %q", d, end, bytes.ToUpper([]byte(msg)))
		}
	}
	if _, d, end := next(); d != "" || !end {
		t.Fatalf("after the client's end: %q (end %v), want END_STREAM", d, end)
	}
}

// TestExtendedConnectMalformed: what RFC 8441 (4) and RFC 9113 (8.1.1,
// 8.5) make a malformed request is reset with PROTOCOL_ERROR before any
// handler runs: :protocol when not advertised, on another method, empty,
// or without :path or :scheme; a CONNECT without :protocol that names a
// path or scheme, or no authority.
func TestExtendedConnectMalformed(t *testing.T) {
	ran := make(chan string, 16)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran <- r.Method + " " + r.RequestURI })
	on := serveTest(t, h, false, Options{EnableConnectProtocol: true})
	off := serveTest(t, h, false, Options{})
	for _, tc := range []struct {
		name   string
		port   int
		fields []string
	}{
		{"not advertised", off, []string{":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":path", "/s", ":authority", "x"}},
		{"on GET", on, []string{":method", "GET", ":protocol", "websocket", ":scheme", "http", ":path", "/s", ":authority", "x"}},
		{"empty", on, []string{":method", "CONNECT", ":protocol", "", ":scheme", "http", ":path", "/s", ":authority", "x"}},
		{"no path", on, []string{":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":authority", "x"}},
		{"no scheme", on, []string{":method", "CONNECT", ":protocol", "websocket", ":path", "/s", ":authority", "x"}},
		{"twice", on, []string{":method", "CONNECT", ":protocol", "websocket", ":protocol", "websocket", ":scheme", "http", ":path", "/s", ":authority", "x"}},
		{"CONNECT with a path", on, []string{":method", "CONNECT", ":scheme", "http", ":path", "/s", ":authority", "x"}},
		{"CONNECT without authority", on, []string{":method", "CONNECT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, fr := rawConn(t, tc.port)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
				BlockFragment: fieldsBlock(tc.fields...)}); err != nil {
				t.Fatal(err)
			}
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("no RST_STREAM: %v", err)
				}
				switch f := f.(type) {
				case *http2.RSTStreamFrame:
					if f.StreamID != 1 || f.ErrCode != http2.ErrCodeProtocol {
						t.Fatalf("RST_STREAM %d %v, want stream 1 PROTOCOL_ERROR", f.StreamID, f.ErrCode)
					}
					return
				case *http2.MetaHeadersFrame:
					t.Fatalf("answered %s", f.PseudoValue("status"))
				case *http2.GoAwayFrame:
					t.Fatalf("GOAWAY %v", f.ErrCode)
				}
			}
		})
	}
	select {
	case r := <-ran:
		t.Errorf("a handler ran for %s", r)
	default:
	}
}
