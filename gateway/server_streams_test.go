package gateway

import (
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestDefaultMaxStreams checks what a default gateway advertises in its
// SETTINGS: 32 concurrent streams per connection, not Go's 250. When the
// gateway's CPU is the bottleneck, streams past what it can serve only
// queue inside its HTTP/2 server, unfairly (benchmarks/README.md,
// "Why the overload is run twice": admitted p99 about halved and RSS a
// third with 32); a client holds the rest in its own queue instead.
func TestDefaultMaxStreams(t *testing.T) {
	e := newTestEnv(t, "h2c", nil)
	c, err := net.DialTimeout("tcp", e.srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f.Header())
	}
	v, ok := sf.Value(http2.SettingMaxConcurrentStreams)
	if !ok || v != 32 || DefaultMaxConcurrentStreams != 32 {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d (sent: %v), default %d; want 32", v, ok, DefaultMaxConcurrentStreams)
	}
}
