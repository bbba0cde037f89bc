package benchmarks

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runSSE measures n SSE subscribers of the gateway, with one more reading
// at 1% of its rate when slow.
func (e *fanoutEnv) runSSE(ctx context.Context, s *suite, n int, slow bool) (fanoutRun, error) {
	l := newLatencies()
	rss0, _, err := memStatus(e.gw.pid)
	if err != nil {
		return fanoutRun{}, err
	}
	subs, err := e.connectSSE(ctx, n, l)
	defer subs.close()
	if err != nil {
		return fanoutRun{}, err
	}
	time.Sleep(500 * time.Millisecond) // the gateway's heap settles
	rss1, _, err := memStatus(e.gw.pid)
	if err != nil {
		return fanoutRun{}, err
	}
	if slow {
		defer e.startSlow(ctx, n, new(slowStats))()
	}
	run, err := e.measureSSE(ctx, s, n, l)
	run.memPerSub = float64(rss1-rss0) / float64(n)
	return run, err
}

// sseSubscribers are SSE subscribers reading in goroutines of this process.
type sseSubscribers struct {
	tr     *http.Transport
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// connectSSE connects n SSE subscribers, each on its own connection,
// recording into l, and waits until all are streaming; close ends them.
func (e *fanoutEnv) connectSSE(ctx context.Context, n int, l *latencies) (*sseSubscribers, error) {
	base := "http://" + e.gw.addr
	ss := &sseSubscribers{tr: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}}
	hc := &http.Client{Transport: ss.tr}
	var sctx context.Context
	sctx, ss.cancel = context.WithCancel(ctx)
	var connected atomic.Int64
	for i := range n {
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			readSSE(sctx, hc, streamURL(base, fanoutSymbolsOf(i)), l, &connected)
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for connected.Load() < int64(n) {
		if time.Now().After(deadline) || l.ended.Load() > 0 || ctx.Err() != nil {
			return ss, fmt.Errorf("%w: %d of %d, %d failed", errFanoutSetup, connected.Load(), n, l.ended.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ss, nil
}

func (ss *sseSubscribers) close() {
	ss.cancel()
	ss.wg.Wait()
	ss.tr.CloseIdleConnections()
}

// startSlow starts the slow subscriber on subscriber i's symbols; the
// returned func stops it and waits for it.
func (e *fanoutEnv) startSlow(ctx context.Context, i int, st *slowStats) (stop func()) {
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		slowSSE(sctx, streamURL("http://"+e.gw.addr, fanoutSymbolsOf(i)), st)
	}()
	return func() { cancel(); <-done }
}

// measureSSE measures one window of the n subscribers recording into l.
func (e *fanoutEnv) measureSSE(ctx context.Context, s *suite, n int, l *latencies) (fanoutRun, error) {
	cpu, err := e.window(ctx, s, []*latencies{l}, e.gw, e.nats)
	if err != nil {
		return fanoutRun{}, err
	}
	return sseRun(s, n, l, cpu[0], cpu[1]), nil
}

// sseRun is the run of n SSE subscribers that recorded into l, whose
// gateway and NATS server used gw and nats of CPU in the window.
func sseRun(s *suite, n int, l *latencies, gw, nats time.Duration) fanoutRun {
	ev := l.events.Load()
	return fanoutRun{label: "SSE via the gateway", subs: n, owed: float64(n * fanoutPerSub * fanoutRate),
		delivered: float64(ev) / s.o.Duration.Seconds(), p50: l.quantile(50), p99: l.quantile(99),
		gwCPU: perEvent(gw, ev), natsCPU: perEvent(nats, ev), cut: l.ended.Load()}
}

func streamURL(base string, symbols []string) string {
	return base + "/v1/streams/quote?snapshot=false&symbols=" + strings.Join(symbols, ",")
}

var timeKey = []byte(`"time":"`)

// readSSE reads one subscription until ctx ends, recording each event's
// latency from its time attribute.
func readSSE(ctx context.Context, hc *http.Client, url string, l *latencies, connected *atomic.Int64) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		l.ended.Add(1)
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		if ctx.Err() == nil {
			l.ended.Add(1)
		}
		if resp != nil {
			resp.Body.Close()
		}
		return
	}
	defer resp.Body.Close()
	connected.Add(1)
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if ctx.Err() == nil {
				l.ended.Add(1)
			}
			return
		}
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		l.record(eventTime(line))
	}
}

// eventTime reads the time attribute of an event's JSON.
func eventTime(line []byte) int64 {
	i := bytes.Index(line, timeKey)
	if i < 0 {
		return 0
	}
	rest := line[i+len(timeKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	if err != nil {
		return 0
	}
	return t.UnixNano()
}

// slowStats counts the slow subscriber's connections and the events it
// read.
type slowStats struct {
	conns, events atomic.Int64
}

// slowSSE reads one event a second through a 4 KiB socket buffer,
// reconnecting when the gateway drops it, until ctx ends.
func slowSSE(ctx context.Context, url string, st *slowStats) {
	d := &net.Dialer{Control: rcvBufBeforeConnect(4 << 10)}
	tr := &http.Transport{DisableCompression: true, DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		st.conns.Add(1)
		br := bufio.NewReaderSize(resp.Body, 512)
		for ctx.Err() == nil {
			line, err := br.ReadSlice('\n')
			if err != nil && err != bufio.ErrBufferFull {
				break
			}
			if len(line) == 1 && line[0] == '\n' { // an event's end
				st.events.Add(1)
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			}
		}
		resp.Body.Close()
	}
}
