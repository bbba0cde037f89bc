package abuse

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2client is a raw h2c connection on http2's Framer: it writes whatever
// frames the test asks for, valid or not, while a reader goroutine keeps
// reading (so that the server's answers never back up) and records what
// came back.
type h2client struct {
	t    *testing.T
	conn net.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder

	done chan struct{} // closed when the reader stops: the connection ended

	mu       sync.Mutex
	readErr  error
	goAway   *http2.ErrCode // code of the server's GOAWAY, if one came
	pingAcks int
	setAcks  int
	resets   int
	status   map[uint32]string // :status of each stream's response
	data     map[uint32]int    // DATA bytes per stream
}

// dialH2 opens an h2c connection with prior knowledge and sends the
// preface and settings.
func (e *env) dialH2(settings ...http2.Setting) *h2client {
	e.t.Helper()
	c := e.dial()
	h := &h2client{t: e.t, conn: c, fr: http2.NewFramer(c, c), done: make(chan struct{}),
		status: map[uint32]string{}, data: map[uint32]int{}}
	h.enc = hpack.NewEncoder(&h.hbuf)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(64<<10, nil)
	h.fr.MaxHeaderListSize = 1 << 20
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		e.t.Fatal(err)
	}
	if err := h.fr.WriteSettings(settings...); err != nil {
		e.t.Fatal(err)
	}
	go h.read()
	return h
}

func (h *h2client) read() {
	defer close(h.done)
	for {
		f, err := h.fr.ReadFrame()
		h.mu.Lock()
		if err != nil {
			h.readErr = err
			h.mu.Unlock()
			return
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			code := f.ErrCode
			h.goAway = &code
		case *http2.PingFrame:
			if f.IsAck() {
				h.pingAcks++
			}
		case *http2.SettingsFrame:
			if f.IsAck() {
				h.setAcks++
			}
		case *http2.RSTStreamFrame:
			h.resets++
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s != "" {
				h.status[f.StreamID] = s
			}
		case *http2.DataFrame:
			h.data[f.StreamID] += len(f.Data())
		}
		h.mu.Unlock()
	}
}

// headerBlock encodes the request header fields kv (name, value, ...).
func (h *h2client) headerBlock(kv ...string) []byte {
	h.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = h.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return bytes.Clone(h.hbuf.Bytes())
}

// request is the header block of a request for path.
func (h *h2client) request(method, path string, kv ...string) []byte {
	return h.headerBlock(append([]string{":method", method, ":scheme", "http", ":authority", "gateway",
		":path", path}, kv...)...)
}

// ended reports whether the connection has ended (read error) or the
// server has sent GOAWAY.
func (h *h2client) ended() bool {
	select {
	case <-h.done:
		return true
	default:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.goAway != nil
}

// waitEnded waits up to d for the connection to end or a GOAWAY and
// reports whether it came.
func (h *h2client) waitEnded(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if h.ended() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return h.ended()
}

// outcome describes how the connection stands, for the test log.
func (h *h2client) outcome() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := "open"
	if h.goAway != nil {
		s = "GOAWAY " + h.goAway.String()
	}
	if h.readErr != nil {
		s += ", closed (" + h.readErr.Error() + ")"
	}
	return s
}
