package netconn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// net/http answers a request it cannot parse (header block past
// MaxHeaderBytes: 431; malformed: 400; an unknown transfer coding: 501; an
// unsupported version: 505) by writing a fixed plain-text answer to the
// connection itself, bypassing every handler, as one Write of
//
//	HTTP/1.1 <code> <text>[: <detail>]<plainErrorHeaders><code> <text>[: <detail>]
//
// (net/http server.go, conn.serve). plainErrorHeaders is the part that
// tells those answers from a handler's, which always carry a Date.
const plainErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

var http11 = []byte("HTTP/1.1 ")

// problemAnswer returns, for one of net/http's own plain-text error
// answers, the same answer as application/problem+json (RFC 9457) and its
// status; for any other bytes it returns nil. maxHeader, if positive, is
// named in a 431's detail.
func problemAnswer(p []byte, maxHeader int) ([]byte, int) {
	if len(p) < len(http11)+4 || !bytes.HasPrefix(p, http11) || p[len(http11)+3] != ' ' {
		return nil, 0
	}
	eol := bytes.IndexByte(p, '\r')
	if eol < 0 || !bytes.HasPrefix(p[eol:], []byte(plainErrorHeaders)) {
		return nil, 0
	}
	code, err := strconv.Atoi(string(p[len(http11) : len(http11)+3]))
	if err != nil || code < 400 || code > 599 {
		return nil, 0
	}
	// The body repeats the status line: "400 Bad Request: missing
	// required Host header", "501 Not Implemented" + "Unsupported
	// transfer encoding".
	detail := string(p[eol+len(plainErrorHeaders):])
	detail = strings.TrimPrefix(detail, strconv.Itoa(code)+" "+http.StatusText(code))
	detail = strings.TrimPrefix(detail, ": ")
	switch {
	case code == http.StatusRequestHeaderFieldsTooLarge && maxHeader > 0:
		detail = fmt.Sprintf("the request's header block is larger than %d bytes: send less in headers (cookies, tokens) or the data in the body", maxHeader)
	case code == http.StatusRequestHeaderFieldsTooLarge:
		detail = "the request's header block is too large: send less in headers (cookies, tokens) or the data in the body"
	case detail == "":
		detail = "the request is not well-formed HTTP/1.1"
	}
	body, err := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{"about:blank", http.StatusText(code), code, detail})
	if err != nil {
		return nil, 0
	}
	b := fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		code, http.StatusText(code), len(body))
	return append(b, body...), code
}
