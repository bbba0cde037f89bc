// Package xconnect turns on extended CONNECT (RFC 8441) in net/http's
// HTTP/2 server, so that it advertises SETTINGS_ENABLE_CONNECT_PROTOCOL and
// hands a CONNECT with :protocol to its handler (Method "CONNECT",
// Header[":protocol"]) instead of resetting it. Import it for its effect:
//
//	import _ "github.com/sluice-dev/sluice/internal/xconnect"
//
// Go 1.24 to 1.26 keep the feature off unless GODEBUG holds
// http2xconnect=1 (golang/go#71128: browsers would take it for WebSocket
// support), and read that only from the environment, once, when net/http
// initializes: neither a //go:debug directive nor http.HTTP2Config can set
// it (the proposed HTTP2Config.EnableConnectProtocol, golang/go#53208, is
// not in 1.26). This package's init adds it to the environment before
// then: Go initializes packages in the order of their import paths among
// those whose imports are done (the spec, "Package initialization", since
// Go 1.21), and this one imports only os and strings, both done before
// net/http can start, and "github.com/..." sorts before "net/http". So it
// must never import anything that imports net/http.
//
// A GODEBUG that already names http2xconnect is left as it is: an operator
// can still turn the feature off with GODEBUG=http2xconnect=0. The setting
// is process-wide (every net/http HTTP/2 server of the process advertises
// it, and child processes inherit it): such a CONNECT goes to the handler
// of its path like any request. sluice takes it on its subscriber streams;
// the data listener's other routes answer it 405 or 404.
package xconnect

import (
	"os"
	"strings"
)

// Setting is what this package adds to GODEBUG.
const Setting = "http2xconnect=1"

func init() {
	v := os.Getenv("GODEBUG")
	if strings.Contains(v, "http2xconnect=") {
		return
	}
	if v != "" {
		v += ","
	}
	_ = os.Setenv("GODEBUG", v+Setting)
}
