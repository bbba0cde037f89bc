package abuse

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// compressedZeros returns 1 GiB of zeros as 1,024 concatenated gzip
// members or zstd frames of 1 MiB each (about 1.1 MB and 0.1 MB): one body
// to a decoder, built in milliseconds.
func compressedZeros(t *testing.T, coding string) []byte {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var one []byte
	switch coding {
	case "gzip":
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(zeros)
		_ = zw.Close()
		one = buf.Bytes()
	case "zstd":
		zw, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		one = zw.EncodeAll(zeros, nil)
		zw.Close()
	}
	return bytes.Repeat(one, 1024)
}

// TestDecompressionBombs: eight clients at once (two under the race
// detector), over HTTP/1.1 and h2c,
// each send 1 GiB of zeros compressed (gzip, zstd); each gets 413
// problem+json, the process's resident set grows by nowhere near the
// inflated 8 GiB of each round, and it returns to its baseline with good requests still
// served.
func TestDecompressionBombs(t *testing.T) {
	// The bodies are built before the baseline is taken: the encoders'
	// own memory is the test's, not the gateway's.
	bodies := map[string][]byte{"gzip": compressedZeros(t, "gzip"), "zstd": compressedZeros(t, "zstd")}
	e := newEnv(t, nil)
	clients := 8
	if raceEnabled {
		// The race detector's shadow memory for the bodies' buffers is
		// not given back: fewer at once, or RSS never returns.
		clients = 2
	}
	for _, coding := range []string{"gzip", "zstd"} {
		body := bodies[coding]
		var wg sync.WaitGroup
		var mu sync.Mutex
		var peak int64
		start := time.Now()
		for i := range clients {
			c := e.h1
			if i%2 == 1 {
				c = e.h2c
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, ct, answer, err := e.post(c, "application/x-ndjson", body, "Content-Encoding", coding)
				mu.Lock()
				peak = max(peak, rss())
				mu.Unlock()
				if err != nil || status != http.StatusRequestEntityTooLarge || ct != "application/problem+json" {
					t.Errorf("%s bomb: %d %q %v %.100s, want 413 problem+json", coding, status, ct, err, answer)
				}
			}()
		}
		wg.Wait()
		t.Logf("%d %s bombs of %d bytes (1 GiB each inflated): answered in %v; RSS at most %d MB (baseline %d MB)",
			clients, coding, len(body), time.Since(start).Round(time.Millisecond), peak>>20, e.base.rss>>20)
		// Each request holds at most its 4 MiB body buffer (grown by
		// doubling) and a decoder; 256 MB is far below the GiBs inflated.
		if peak > e.base.rss+256<<20 {
			t.Errorf("RSS reached %d MB answering bombs (baseline %d MB)", peak>>20, e.base.rss>>20)
		}
	}
	e.recovered()
}
