package gateway

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

// TestH2ErrorReasonsCoverGo reads the toolchain's HTTP/2 server and checks
// that every reason it can pass to CountError has its own counter, so that
// a Go upgrade that adds one shows up here rather than as "other".
func TestH2ErrorReasonsCoverGo(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "src", "net", "http", "h2_bundle.go"))
	if err != nil {
		t.Skipf("no toolchain source to check against: %v", err)
	}
	codes := map[string]string{"Protocol": "PROTOCOL_ERROR", "FlowControl": "FLOW_CONTROL_ERROR",
		"StreamClosed": "STREAM_CLOSED", "RefusedStream": "REFUSED_STREAM", "EnhanceYourCalm": "ENHANCE_YOUR_CALM",
		"FrameSize": "FRAME_SIZE_ERROR", "Internal": "INTERNAL_ERROR", "Cancel": "CANCEL",
		"Compression": "COMPRESSION_ERROR", "No": "NO_ERROR"}
	var want []string
	server := regexp.MustCompile(`sc\.countError\("(\w+)",\s*http2(ConnectionError|streamError)\((?:[^,\n]*,\s*)?http2ErrCode(\w+)\)`)
	for _, m := range server.FindAllSubmatch(src, -1) {
		typ := "stream"
		if string(m[2]) == "ConnectionError" {
			typ = "conn"
		}
		want = append(want, typ+"_"+codes[string(m[3])]+"_"+string(m[1]))
	}
	for _, m := range regexp.MustCompile(`[^.]countError\("(frame_\w+)"\)`).FindAllSubmatch(src, -1) {
		want = append(want, string(m[1]))
	}
	for _, m := range regexp.MustCompile(`f\("(conn_\w+)"\)`).FindAllSubmatch(src, -1) {
		want = append(want, string(m[1]))
	}
	if len(want) < 40 {
		t.Fatalf("found only %d reasons in the toolchain's source: the patterns no longer match it", len(want))
	}
	for _, r := range want {
		if !slices.Contains(h2ErrorReasons[:], r) {
			t.Errorf("Go's HTTP/2 server counts %q, which h2ErrorReasons lacks", r)
		}
	}
}

// TestH2ErrorsCount: a known reason increments its own counter, anything
// else "other", and neither allocates.
func TestH2ErrorsCount(t *testing.T) {
	set := metrics.NewSet()
	e := newH2Errors(set)
	e.count("frame_ping_has_stream")
	e.count("something_new")
	e.count("something_else")
	get := func(reason string) uint64 {
		return set.GetOrCreateCounter(`sluice_gateway_http2_errors_total{reason="` + reason + `"}`).Get()
	}
	if got := get("frame_ping_has_stream"); got != 1 {
		t.Errorf("frame_ping_has_stream counted %d, want 1", got)
	}
	if got := get(h2ReasonOther); got != 2 {
		t.Errorf("other counted %d, want 2", got)
	}
	if n := testing.AllocsPerRun(100, func() { e.count("stream_STREAM_CLOSED_closed"); e.count("new") }); n != 0 {
		t.Errorf("count allocates %v times a call", n)
	}
}
