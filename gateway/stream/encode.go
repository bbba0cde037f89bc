package stream

import (
	"strconv"

	"github.com/sluice-dev/sluice/schemas"
)

// format is how a subscriber's events are framed.
type format uint8

const (
	formatSSE format = iota
	formatNDJSON
	formatWSJSON
	formatWSMsgpack
)

// The marker and final event types.
const (
	TypeSnapshotEnd = "sluice.snapshot.end"
	TypeStreamEnd   = "sluice.stream.end"
)

// Reasons of a sluice.stream.end event.
const (
	EndShutdown     = "shutdown"
	EndSlowConsumer = "slow_consumer"
	// EndError: the durable stream could not be read (durable mode).
	EndError = "error"
)

// appendEvent appends one enriched event framed for f: the CloudEvent with
// the extension attributes sluiceseq, sluicereplaced and (but in SSE, where
// it is the id) sluicetoken. An event that does not transcode is skipped
// (ok false).
func appendEvent(b []byte, f format, it *item, tok []byte) (out []byte, ok bool) {
	start := len(b)
	if f == formatWSMsgpack {
		return appendMsgpackEvent(b, it, tok)
	}
	if f == formatSSE {
		b = append(b, "id: "...)
		b = append(b, tok...)
		b = append(b, "\nevent: "...)
		b = appendType(b, it.ev.data)
		b = append(b, "\ndata: "...)
	}
	js, err := it.ev.JSON()
	if err != nil || len(js) < 2 || js[len(js)-1] != '}' {
		return b[:start], false
	}
	b = append(b, js[:len(js)-1]...)
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, `"sluiceseq":`...)
	b = strconv.AppendUint(b, it.seq, 10)
	b = append(b, `,"sluicereplaced":`...)
	b = strconv.AppendUint(b, uint64(it.replaced), 10)
	if f != formatSSE {
		b = append(b, `,"sluicetoken":"`...)
		b = append(b, tok...)
		b = append(b, '"')
	}
	b = append(b, '}')
	switch f {
	case formatSSE:
		b = append(b, "\n\n"...)
	case formatNDJSON:
		b = append(b, '\n')
	}
	return b, true
}

// appendType appends the event's CloudEvents type, read from its map.
func appendType(b []byte, data []byte) []byte {
	r := schemas.NewReader(data)
	n := r.MapHeader()
	for i := 0; i < n && !r.Done(); i++ {
		if !r.IsString() {
			break
		}
		k := r.StringBytes()
		if string(k) == "type" && r.IsString() {
			return append(b, r.StringBytes()...)
		}
		r.Skip()
	}
	return append(b, "unknown"...)
}

func appendMsgpackEvent(b []byte, it *item, tok []byte) ([]byte, bool) {
	data := it.ev.data
	r := schemas.NewReader(data)
	n := r.MapHeader()
	if r.Err() != nil {
		return b, false
	}
	b = schemas.AppendMapHeader(b, n+3)
	b = append(b, data[r.Offset():]...)
	b = schemas.AppendString(b, "sluiceseq")
	b = schemas.AppendUint(b, it.seq)
	b = schemas.AppendString(b, "sluicereplaced")
	b = schemas.AppendUint(b, uint64(it.replaced))
	b = schemas.AppendString(b, "sluicetoken")
	b = schemas.AppendStringBytes(b, tok)
	return b, true
}

// control is a marker or final event: {"type":..., then fields}.
type control struct {
	typ    string
	count  int    // snapshot end: events in the snapshot
	reason string // stream end
	token  []byte // stream end: the token of the last event delivered
	detail string
}

func appendControl(b []byte, f format, c *control) []byte {
	if f == formatWSMsgpack {
		n := 2
		if c.reason != "" {
			n += 3
		}
		b = schemas.AppendMapHeader(b, n)
		b = schemas.AppendString(b, "type")
		b = schemas.AppendString(b, c.typ)
		if c.reason != "" {
			b = schemas.AppendString(b, "reason")
			b = schemas.AppendString(b, c.reason)
			b = schemas.AppendString(b, "token")
			b = schemas.AppendStringBytes(b, c.token)
			b = schemas.AppendString(b, "detail")
			b = schemas.AppendString(b, c.detail)
		}
		b = schemas.AppendString(b, "snapshot")
		return schemas.AppendInt(b, int64(c.count))
	}
	if f == formatSSE {
		if c.reason != "" && len(c.token) > 0 {
			b = append(b, "id: "...)
			b = append(b, c.token...)
			b = append(b, '\n')
		}
		b = append(b, "event: "...)
		b = append(b, c.typ...)
		b = append(b, "\ndata: "...)
	}
	b = append(b, `{"type":`...)
	b = schemas.AppendJSONString(b, c.typ)
	if c.reason != "" {
		b = append(b, `,"reason":`...)
		b = schemas.AppendJSONString(b, c.reason)
		b = append(b, `,"token":"`...)
		b = append(b, c.token...)
		b = append(b, `","detail":`...)
		b = schemas.AppendJSONString(b, c.detail)
	} else {
		b = append(b, `,"snapshot":`...)
		b = strconv.AppendInt(b, int64(c.count), 10)
	}
	b = append(b, '}')
	switch f {
	case formatSSE:
		b = append(b, "\n\n"...)
	case formatNDJSON:
		b = append(b, '\n')
	}
	return b
}
