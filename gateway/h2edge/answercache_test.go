package h2edge

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fieldsFast claims POST /fast and answers in End with its body and the
// same fields each time (two values of one name among them).
type fieldsFast struct{}

type fieldsExchange struct{ hdr http.Header }

func (fieldsFast) Claim(method, path string) FastExchange {
	if method != http.MethodPost || path != "/fast" {
		return nil
	}
	return &fieldsExchange{hdr: make(http.Header)}
}

func (x *fieldsExchange) Header() http.Header             { return x.hdr }
func (x *fieldsExchange) Begin(*FastStream) (int64, bool) { return 1 << 10, true }
func (x *fieldsExchange) Abort(*FastStream)               {}
func (x *fieldsExchange) End(fs *FastStream, b []byte, _ error) {
	fs.Respond(http.StatusAccepted, http.Header{"Content-Type": {"text/plain"}, "Vary": {"a", "b"},
		"X-One": {"1"}, "X-Two": {"2"}}, b)
}

// TestFastAnswerCache: answers of one shape reuse the connection's cached
// header block (answerCache) and still decode to their own fields and
// content-length, with adapter answers (which change the dynamic table)
// and a SETTINGS_HEADER_TABLE_SIZE change between them.
func TestFastAnswerCache(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Adapter", r.URL.Path)
		_, _ = w.Write([]byte("adapter"))
	}), false, Options{Fast: fieldsFast{}})
	c, fr := rawConn(t, port)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	id := uint32(1)
	for i := range 60 {
		switch {
		case i == 20:
			_ = fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 64})
		case i == 40:
			_ = fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 4096})
		}
		if i%7 == 3 {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: getBlock(enc, &b, "/other"+strconv.Itoa(i)),
				EndStream: true, EndHeaders: true})
			checkAnswer(t, fr, id, "200", map[string]string{"x-adapter": "/other" + strconv.Itoa(i), "content-length": "7",
				"content-type": "text/plain; charset=utf-8"}, "adapter")
			id += 2
		}
		body := strings.Repeat("x", 1+i%13*9)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: fastBlock(enc, &b), EndHeaders: true})
		_ = fr.WriteData(id, true, []byte(body))
		checkAnswer(t, fr, id, "202", map[string]string{"content-type": "text/plain", "vary": "a,b", "x-one": "1", "x-two": "2",
			"content-length": strconv.Itoa(len(body))}, body)
		id += 2
	}
}

// getBlock is a GET of path encoded with enc (the connection's encoder: a
// fresh one would index fields that enc does not know of).
func getBlock(enc *hpack.Encoder, b *bytes.Buffer, path string) []byte {
	b.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", path}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return b.Bytes()
}

// checkAnswer reads stream id's answer and checks its status, fields
// (values of one name joined by commas; date must be there) and body.
func checkAnswer(t *testing.T, fr *http2.Framer, id uint32, status string, want map[string]string, body string) {
	t.Helper()
	got := map[string]string{}
	var data []byte
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("stream %d: %v", id, err)
		}
		var ended bool
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID != id {
				t.Fatalf("HEADERS of stream %d, want %d", f.StreamID, id)
			}
			if s := f.PseudoValue("status"); s != status {
				t.Fatalf("stream %d: status %s, want %s", id, s, status)
			}
			for _, hf := range f.RegularFields() {
				if got[hf.Name] != "" {
					got[hf.Name] += ","
				}
				got[hf.Name] += hf.Value
			}
			ended = f.StreamEnded()
		case *http2.DataFrame:
			data = append(data, f.Data()...)
			ended = f.StreamEnded()
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		}
		if ended {
			break
		}
	}
	if got["date"] == "" {
		t.Errorf("stream %d: no date", id)
	}
	delete(got, "date")
	if len(got) != len(want) {
		t.Errorf("stream %d: fields %v, want %v", id, got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("stream %d: %s %q, want %q", id, k, got[k], v)
		}
	}
	if string(data) != body {
		t.Errorf("stream %d: body %q, want %q", id, data, body)
	}
}

func TestAllIndexed(t *testing.T) {
	f := func(b []byte, want bool) {
		t.Helper()
		if got := allIndexed(b); got != want {
			t.Errorf("allIndexed(%x) = %v, want %v", b, got, want)
		}
	}
	f(nil, true)
	f([]byte{0x82, 0xbe}, true)
	f([]byte{0xff, 0x80, 0x01, 0x88}, true) // index 127+128 (two continuation bytes), then 8
	f([]byte{0xff, 0x80}, false)            // cut short
	f([]byte{0x82, 0x40}, false)            // a literal with indexing
	f([]byte{0x20}, false)                  // a table size update
	var d hpack.Decoder = *hpack.NewDecoder(4096, nil)
	fs, err := d.DecodeFull(appendContentLength(nil, 1234567))
	if err != nil || len(fs) != 1 || fs[0].Name != "content-length" || fs[0].Value != "1234567" {
		t.Errorf("appendContentLength decodes to %v, %v", fs, err)
	}
}
