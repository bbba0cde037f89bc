package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/schemas"
)

// byteCounter counts the bytes read through it.
type byteCounter struct {
	r io.Reader
	n atomic.Int64
}

func (c *byteCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestStalledSubscriberBoundedOnGateway (issue #13): on the gateway's own
// listener (write coalescer included) an HTTP/1.1 subscriber that stops
// reading finds, when it reads again, the latest quote after about
// --stream-notsent-lowat bytes in the socket and as many in the coalescer,
// not after the megabytes the kernel's grown send buffer and the
// coalescer's 256 KiB would hold. Its client sets a 4 KiB receive buffer
// before connecting; it reads 2,000 updates of one symbol (the gateway's
// send buffer grows, as on a live stream), then none of 4,000 more, each
// published once the one before is through NATS.
func TestStalledSubscriberBoundedOnGateway(t *testing.T) {
	e := newTestEnv(t, "h1", nil, func(o *Options) {
		hub, err := stream.NewHub(stream.Options{Conn: o.Conn, Subjects: o.Subjects, WriteTimeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		o.Streams = hub
	})
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) }); cerr != nil {
			return cerr
		}
		return err
	}}
	var ps http.Protocols
	ps.SetHTTP1(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &ps, DialContext: d.DialContext}}
	req, _ := http.NewRequest("GET", e.base+"/v1/streams/quote?symbols=S&snapshot=false", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %s", resp.Status)
	}
	bc := &byteCounter{r: resp.Body}
	r := bufio.NewReader(bc)
	if err := e.nc.Flush(); err != nil { // the hub's subscription is in
		t.Fatal(err)
	}
	publish := func(i int) {
		ev := schemas.Enriched{ID: fmt.Sprintf("S-%d", i), Source: "/test", Type: schemas.TypeQuoteEnrichedV1,
			Subject: "S", Time: time.Now().UnixNano(), Kind: schemas.KindQuote}
		ev.Quote.Quote = schemas.Quote{Symbol: "S", Bid: float64(i), Ask: float64(i + 1), Present: schemas.FSymbol | schemas.FBid | schemas.FAsk}
		if err := e.nc.Publish(e.subj.Enriched(schemas.KindQuote, "S"), ev.AppendMsgpack(nil)); err != nil {
			t.Fatal(err)
		}
	}
	// readTo reads until the quote whose bid is i, and returns the events
	// read and the updates they replaced.
	readTo := func(i int) (events, replaced int) {
		t.Helper()
		want := fmt.Sprintf(`"bid":%d,`, i)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading to quote %d: %v", i, err)
			}
			if !strings.HasPrefix(line, "data: ") {
				continue
			}
			events++
			if k := strings.Index(line, `"sluicereplaced":`); k >= 0 {
				var n int
				_, _ = fmt.Sscanf(line[k+len(`"sluicereplaced":`):], "%d", &n)
				replaced += n
			}
			if strings.Contains(line, want) {
				return events, replaced
			}
		}
	}
	const warm, last = 2000, 6000
	for i := 1; i <= warm; {
		for end := i + 100; i < end; i++ {
			publish(i)
		}
		if err := e.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		readTo(i - 1)
	}
	bc.n.Store(0)
	for i := warm + 1; i <= last; i++ {
		publish(i)
		if err := e.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	events, replaced := readTo(last)
	read := bc.n.Load()
	// The kernel's unsent bytes (the mark, one write past it, the
	// client's window in flight) and the coalescer's pending and
	// in-flight buffers, each the mark.
	const bound = 4*stream.DefaultNotSentLowat + 16<<10
	if read > bound || replaced == 0 {
		t.Errorf("the latest quote came after %d bytes (%d events, %d replaced), want at most %d with some replaced", read, events, replaced, bound)
	}
	t.Logf("%d updates read as %d events (%d replaced), %d bytes", last-warm, events, replaced, read)
}
