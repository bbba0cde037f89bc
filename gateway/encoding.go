package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// coding is a request body's content coding (RFC 9110 section 8.4).
type coding uint8

const (
	codingIdentity coding = iota
	codingGzip
	codingZstd
)

func (c coding) String() string {
	switch c {
	case codingGzip:
		return "gzip"
	case codingZstd:
		return "zstd"
	}
	return "identity"
}

// acceptEncoding answers a 415 for a content coding the gateway does not
// decode (RFC 7694).
var acceptEncoding = []string{"gzip, zstd"}

// zstdMaxWindow bounds the history a zstd frame may ask the decoder to keep
// (RFC 8878 recommends decoders support 8 MiB): a frame asking for more is
// refused rather than allocated.
const zstdMaxWindow = 8 << 20

// requestCoding reads Content-Encoding: none or identity is the plain path;
// gzip (or its alias x-gzip) and zstd are decoded; anything else, and a
// list of several codings, is 415.
func requestCoding(h http.Header) (coding, *decodeError) {
	vals := h["Content-Encoding"]
	if len(vals) == 0 {
		return codingIdentity, nil
	}
	c, n := codingIdentity, 0
	for _, v := range vals {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if tok = strings.TrimSpace(tok); tok == "" {
				continue
			}
			n++
			switch {
			case strings.EqualFold(tok, "identity"):
				c = codingIdentity
			case strings.EqualFold(tok, "gzip"), strings.EqualFold(tok, "x-gzip"):
				c = codingGzip
			case strings.EqualFold(tok, "zstd"):
				c = codingZstd
			default:
				return 0, unsupportedCoding(fmt.Sprintf("Content-Encoding %q", tok))
			}
		}
	}
	if n > 1 {
		return 0, unsupportedCoding(fmt.Sprintf("%d content codings (%q)", n, strings.Join(vals, ", ")))
	}
	return c, nil
}

func unsupportedCoding(what string) *decodeError {
	return &decodeError{status: http.StatusUnsupportedMediaType,
		detail: what + " is not supported: send the body as is, or compressed with one of gzip, zstd (see Accept-Encoding)"}
}

// wireReader is a request body as it arrives on the wire, under a
// decompressor: it keeps the body's time bounds on the wire bytes (the
// deadline moves one second per minRate bytes received, as for a plain
// body), refuses more than max wire bytes, and keeps the first error of the
// body itself so that a failed read is classified by its cause rather than
// as a corrupt stream. (The fast edge's bodies are all in before they are
// decoded, see decodeCoded: they need none of this.)
type wireReader struct {
	br       *bodyReader
	w        http.ResponseWriter
	r        *http.Request
	arrived  time.Time
	n        int64 // wire bytes received
	extended int64 // wire bytes when the deadline was last moved
	err      error // the body's own error (not io.EOF)
}

// errWireTooLarge stops a decompressor when the compressed body itself
// passes the bound.
var errWireTooLarge = errors.New("compressed body larger than the bound")

func (wr *wireReader) Read(p []byte) (int, error) {
	if room := wr.br.max + 1 - wr.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := wr.r.Body.Read(p)
	wr.n += int64(n)
	if wr.n > wr.br.max {
		return n, errWireTooLarge
	}
	if err != nil && !errors.Is(err, io.EOF) && wr.err == nil {
		wr.err = err
	}
	if br := wr.br; br.minRate > 0 && wr.n-wr.extended >= br.minRate {
		wr.extended = wr.n
		setReadDeadline(wr.w, wr.arrived.Add(br.timeout+time.Duration(wr.n/br.minRate+1)*time.Second))
	}
	return n, err
}

// An inflater is a pooled decompressor over a wireReader (a body read
// from its request) or mem (a body already in memory); building them is
// the costly part (a zstd decoder allocates its tables), so both kinds are
// reused. Each is reset onto the next request's body.
type inflater struct {
	wire wireReader
	mem  bytes.Reader // an io.ByteReader: gzip reads it without a bufio.Reader of its own
	gz   *gzip.Reader
	zs   *zstd.Decoder
	src  io.Reader // gz or zs, once reset onto wire or mem
}

var (
	gzipInflaters sync.Pool // *inflater with gz set
	zstdInflaters sync.Pool // *inflater with zs set
)

// getInflater returns an inflater of coding c reading the body of r
// through wire's bounds, or, with mem set (wire unused), the bytes of mem;
// io errors from resetting (a gzip header cut short or corrupt) come back
// as err with the inflater still to be put back.
func getInflater(c coding, wire wireReader, mem []byte) (*inflater, error) {
	pool := &gzipInflaters
	if c == codingZstd {
		pool = &zstdInflaters
	}
	inf, _ := pool.Get().(*inflater)
	if inf == nil {
		inf = &inflater{}
	}
	var src io.Reader = &inf.wire
	if mem != nil {
		inf.mem.Reset(mem)
		src = &inf.mem
	} else {
		inf.wire = wire
	}
	switch c {
	case codingGzip:
		if inf.gz == nil {
			inf.gz = new(gzip.Reader)
		}
		inf.src = inf.gz
		return inf, inf.gz.Reset(src)
	default:
		if inf.zs == nil {
			zs, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(zstdMaxWindow))
			if err != nil {
				return inf, fmt.Errorf("building a zstd decoder: %w", err)
			}
			inf.zs = zs
		}
		inf.src = inf.zs
		return inf, inf.zs.Reset(src)
	}
}

func putInflater(c coding, inf *inflater) {
	inf.wire = wireReader{}
	inf.mem.Reset(nil)
	inf.src = nil
	if c == codingZstd {
		if inf.zs == nil {
			return
		}
		_ = inf.zs.Reset(nil) // drop the reference to the body
		zstdInflaters.Put(inf)
		return
	}
	gzipInflaters.Put(inf)
}

// readCoded reads a compressed body of r into buf (reused): the
// decompressed bytes are bounded by max (413 as soon as one byte more comes
// out: a decompression bomb inflates no further than that), the wire bytes
// too; a corrupt or truncated stream is 400; the time bounds apply to the
// wire bytes as for a plain body.
func (br *bodyReader) readCoded(w http.ResponseWriter, r *http.Request, c coding, buf []byte, arrived time.Time) ([]byte, *decodeError) {
	inf, err := getInflater(c, wireReader{br: br, w: w, r: r, arrived: arrived}, nil)
	defer putInflater(c, inf)
	buf, err = br.inflate(inf, buf, err)
	if err == nil {
		if inf.wire.extended > 0 || r.ProtoMajor == 1 {
			setReadDeadline(w, time.Time{}) // as in read
		}
		return buf, nil
	}
	var derr *decodeError
	if errors.As(err, &derr) {
		return buf, derr
	}
	return buf, br.codedError(r, c, &inf.wire, err)
}

// decodeCoded is readCoded for a body the fast edge collected (within
// --max-body on the wire): it is decompressed from body into buf
// (reused) on the caller's goroutine, with the same bound on the
// decompressed bytes and the same errors.
func (br *bodyReader) decodeCoded(r *http.Request, c coding, body, buf []byte) ([]byte, *decodeError) {
	wire := wireReader{n: int64(len(body))}
	if len(body) == 0 {
		return buf[:0], br.codedError(r, c, &wire, io.EOF)
	}
	inf, err := getInflater(c, wireReader{}, body)
	defer putInflater(c, inf)
	buf, err = br.inflate(inf, buf, err)
	if err == nil {
		return buf, nil
	}
	var derr *decodeError
	if errors.As(err, &derr) {
		return buf, derr
	}
	return buf, br.codedError(r, c, &wire, err)
}

// inflate reads inf's decompressed bytes into buf (reused) until the end
// of the stream (nil), more than max bytes (a *decodeError, 413), or
// another error of the decoder or its source (err first, from resetting
// inf).
func (br *bodyReader) inflate(inf *inflater, buf []byte, err error) ([]byte, error) {
	buf = buf[:0]
	for err == nil {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		// Never ask for more than one byte past the bound: what is
		// inflated is what is asked for.
		end := min(int64(cap(buf)), br.max+1)
		var n int
		n, err = inf.src.Read(buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > br.max {
			return buf, &decodeError{status: http.StatusRequestEntityTooLarge,
				detail: fmt.Sprintf("body larger than %d bytes once decompressed (flag --max-body)", br.max)}
		}
	}
	if errors.Is(err, io.EOF) && inf.wire.err == nil && (inf.wire.n > 0 || inf.mem.Size() > 0) {
		return buf, nil
	}
	return buf, err
}

// codedError classifies a failed compressed read: the wire's own bound or
// error first (413, or bodyError's 408/499/400), then the decoder's
// (a zstd window past zstdMaxWindow is 413, anything else 400).
func (br *bodyReader) codedError(r *http.Request, c coding, wire *wireReader, err error) *decodeError {
	switch {
	case errors.Is(err, errWireTooLarge):
		return tooLarge(br.max)
	case wire.err != nil:
		return bodyError(r, wire.err, br.timeout)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return &decodeError{status: http.StatusRequestEntityTooLarge,
			detail: fmt.Sprintf("zstd frame needs a window larger than %d bytes: compress with a smaller window", zstdMaxWindow)}
	case wire.n == 0:
		return badRequest("empty body with Content-Encoding %s", c)
	case errors.Is(err, io.EOF):
		err = io.ErrUnexpectedEOF
	}
	return badRequest("corrupt %s body: %v", c, err)
}
