package netconn

import (
	"encoding/binary"
	"errors"
	"time"
)

// ErrControlFlood is the read error of a connection closed for sending more
// HTTP/2 PING or SETTINGS frames in a second than [Options] allow.
var ErrControlFlood = errors.New("netconn: too many HTTP/2 PING or SETTINGS frames: connection closed")

// h2Preface is what an h2c client with prior knowledge sends first.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types and the ACK flag (RFC 9113, section 6).
const (
	frameSettings = 0x4
	framePing     = 0x6
	flagAck       = 0x1
)

// The states of a frameWatch.
const (
	watchPreface = iota // matching the client preface
	watchHeader         // collecting a frame header
	watchPayload        // skipping a payload
	watchOff            // not HTTP/2 (or done): bytes pass unseen
)

// frameWatch follows the HTTP/2 frames in what the server reads from an h2c
// connection, without copying or buffering them: it checks the client
// preface, then reads each 9-byte frame header (gathering it in hdr only
// when a read splits it) and skips the payload by count. It counts the
// PING and SETTINGS frames that ask for an answer (not ACKs) in a
// one-second window; past limit, scan fails with [ErrControlFlood]. Go's
// HTTP/2 server answers every such frame, with no bound of its own for a
// client that reads the answers.
//
// A connection that does not start with the preface (HTTP/1.1) is left
// alone after its first bytes.
type frameWatch struct {
	state int8
	n     int     // preface bytes matched, or header bytes in hdr
	hdr   [9]byte // a frame header split across reads
	skip  int     // payload bytes still to skip

	limit  int       // frames per window
	count  int       // frames in the current window
	window time.Time // start of the current window
}

// scan follows p, the next bytes the server read.
func (f *frameWatch) scan(p []byte) error {
	for len(p) > 0 {
		switch f.state {
		case watchPreface:
			k := min(len(p), len(h2Preface)-f.n)
			if string(p[:k]) != h2Preface[f.n:f.n+k] {
				f.state, f.n = watchOff, 0
				return nil
			}
			f.n += k
			p = p[k:]
			if f.n == len(h2Preface) {
				f.state, f.n = watchHeader, 0
			}
		case watchPayload:
			if f.skip >= len(p) {
				f.skip -= len(p)
				if f.skip == 0 {
					f.state = watchHeader
				}
				return nil
			}
			p = p[f.skip:]
			f.skip, f.state = 0, watchHeader
		case watchHeader:
			var h []byte
			if f.n == 0 && len(p) >= len(f.hdr) {
				h, p = p[:len(f.hdr)], p[len(f.hdr):] // the usual case: no copy
			} else {
				k := copy(f.hdr[f.n:], p)
				f.n += k
				p = p[k:]
				if f.n < len(f.hdr) {
					return nil
				}
				h, f.n = f.hdr[:], 0
			}
			if err := f.frame(h); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// frame takes in one frame header.
func (f *frameWatch) frame(h []byte) error {
	length := int(binary.BigEndian.Uint32(h[:4]) >> 8)
	if length > 0 {
		f.skip, f.state = length, watchPayload
	}
	if typ, flags := h[3], h[4]; (typ != framePing && typ != frameSettings) || flags&flagAck != 0 {
		return nil
	}
	now := time.Now()
	if now.Sub(f.window) >= time.Second {
		f.window, f.count = now, 0
	}
	f.count++
	if f.count > f.limit {
		f.state = watchOff
		return ErrControlFlood
	}
	return nil
}
