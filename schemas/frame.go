package schemas

import (
	"fmt"
)

// NATS headers of the frames.
const (
	// HeaderCount holds the number of events in a batch frame.
	HeaderCount = "Sluice-Count"
	// HeaderReason holds the first validation code of a dead letter.
	HeaderReason = "Sluice-Reason"
	// HeaderFrame names the frame layout and its version.
	HeaderFrame = "Sluice-Frame"
	// FrameBatchV1 is the HeaderFrame value of a batch frame.
	FrameBatchV1 = "batch.v1"
	// FrameReplyV1 is the HeaderFrame value of a reply frame.
	FrameReplyV1 = "reply.v1"
	// FrameDoneV1 is the HeaderFrame value of a done frame ([AppendDoneFrame]).
	FrameDoneV1 = "done.v1"
	// HeaderBatch holds a batch frame's sequence number, unique among the
	// batches sent to the same reply subject: workers name it in their
	// done frames.
	HeaderBatch = "Sluice-Batch"
	// HeaderReply holds the reply inbox of a batch frame, set only when an
	// event in it waits for a result. It replaces the message's reply
	// subject, which JetStream uses for its own acks.
	HeaderReply = "Sluice-Reply"
	// HeaderSent holds when a batch frame (gateway) or a reply frame
	// (worker) was handed to NATS, in Unix nanoseconds, decimal: the
	// receiver's per-stage latency histograms time the transit from it
	// (wall clocks: across hosts it includes their skew).
	HeaderSent = "Sluice-Sent"
)

// ParseSent reads a [HeaderSent] value; 0 when it is absent or malformed.
// It does not allocate.
func ParseSent(v string) int64 {
	if len(v) == 0 || len(v) > 19 {
		return 0
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// A batch frame is one NATS message whose body is a MessagePack array of
// events (see [Event.AppendMsgpack]); its HeaderCount says how many. When any
// event in it waits for a result, the message's reply subject is the
// gateway's inbox and those events carry sluicecorr and sluiceseq.
//
// BatchFrameHeader starts a batch frame in b with a patchable count; append
// events after it and finish with [FinishBatchFrame].
func BatchFrameHeader(b []byte) []byte { return AppendArrayHeader32(b, 0) }

// FinishBatchFrame writes the event count n into a frame started by
// [BatchFrameHeader] at frame[0].
func FinishBatchFrame(frame []byte, n int) { PatchArrayHeader32(frame, n) }

// ReadBatchFrame reads the array header of a batch frame, returning the
// event count; decode each event with [Event.DecodeMsgpack] on the same r.
func ReadBatchFrame(r *Reader) (int, error) {
	n := r.ArrayHeader()
	if r.err != nil {
		return 0, fmt.Errorf("reading batch frame: %w", r.err)
	}
	return n, nil
}

// Result is one event's outcome in a reply frame.
type Result struct {
	Corr uint64
	Seq  uint32
	// Status is 200 with Event set, or 422 with Errors set.
	Status int
	// Event is the enriched event as MessagePack, aliasing the frame.
	Event []byte
	// Errors lists the validation failures.
	Errors []FieldError
}

// A reply frame is one NATS message per batch, sent by a worker to the
// gateway inbox named as the batch's reply subject: a MessagePack array of
// result maps {"corr", "seq", "status", "event" | "errors"}.
//
// AppendResultOK appends the result of an event that was enriched.
func AppendResultOK(b []byte, corr uint64, seq uint32, ev *Enriched) []byte {
	b = appendResultHead(b, corr, seq)
	b = append(b, "\xa6status\xcc\xc8\xa5event"...)
	return ev.AppendMsgpack(b)
}

func appendResultHead(b []byte, corr uint64, seq uint32) []byte {
	b = append(b, "\x84\xa4corr"...)
	b = AppendUint(b, corr)
	b = append(b, "\xa3seq"...)
	return AppendUint(b, uint64(seq))
}

// AppendResultOKRaw is [AppendResultOK] for an enriched event already
// encoded with [Enriched.AppendMsgpack]: it copies the bytes instead of
// encoding the event a second time.
func AppendResultOKRaw(b []byte, corr uint64, seq uint32, enriched []byte) []byte {
	b = appendResultHead(b, corr, seq)
	b = append(b, "\xa6status\xcc\xc8\xa5event"...)
	return append(b, enriched...)
}

// AppendResultInvalid appends the result of an event that failed validation.
func AppendResultInvalid(b []byte, corr uint64, seq uint32, errs []FieldError) []byte {
	b = appendResultHead(b, corr, seq)
	b = append(b, "\xa6status\xcd\x01\xa6\xa6errors"...)
	return AppendFieldErrors(b, errs)
}

// AppendFieldErrors appends errs as an array of {field, code, detail} maps.
func AppendFieldErrors(b []byte, errs []FieldError) []byte {
	b = AppendArrayHeader(b, len(errs))
	for i := range errs {
		b = append(b, "\x83\xa5field"...)
		b = AppendString(b, errs[i].Field)
		b = append(b, "\xa4code"...)
		b = AppendString(b, errs[i].Code)
		b = append(b, "\xa6detail"...)
		b = AppendString(b, errs[i].Detail)
	}
	return b
}

// DecodeMsgpack reads one result map. Event aliases r's input (nil when the
// frame holds nil or no event); Errors reuses res.Errors' storage.
func (res *Result) DecodeMsgpack(r *Reader) error {
	errs := res.Errors[:0]
	*res = Result{}
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch string(r.StringBytes()) {
		case "corr":
			res.Corr = r.Uint64()
		case "seq":
			res.Seq = r.uint32()
		case "status":
			res.Status = int(r.Int64())
		case "event":
			res.Event = rawOrNil(r)
		case "errors":
			errs = ReadFieldErrors(r, errs)
		default:
			r.Skip()
		}
	}
	res.Errors = errs
	if r.err != nil {
		return fmt.Errorf("decoding result: %w", r.err)
	}
	return nil
}

// ReadFieldErrors reads an array of {field, code, detail} maps, appending to
// dst. Strings alias r's input.
func ReadFieldErrors(r *Reader, dst []FieldError) []FieldError {
	n := r.ArrayHeader()
	for i := 0; i < n && r.err == nil; i++ {
		var fe FieldError
		m := r.MapHeader()
		for j := 0; j < m && r.err == nil; j++ {
			switch string(r.StringBytes()) {
			case "field":
				fe.Field = r.String()
			case "code":
				fe.Code = r.String()
			case "detail":
				fe.Detail = r.String()
			default:
				r.Skip()
			}
		}
		dst = append(dst, fe)
	}
	return dst
}

// A dead letter is one NATS message per rejected event on
// <prefix>.dlq.<kind>, with HeaderReason set to the first code: a map
// {"errors": [...], "event": <the event as received>}.
//
// AppendDeadLetter appends a dead letter holding the raw event.
func AppendDeadLetter(b []byte, errs []FieldError, rawEvent []byte) []byte {
	b = append(b, "\x82\xa6errors"...)
	b = AppendFieldErrors(b, errs)
	b = append(b, "\xa5event"...)
	if len(rawEvent) == 0 {
		return AppendNil(b)
	}
	return append(b, rawEvent...)
}

// DeadLetter is a decoded dead letter.
type DeadLetter struct {
	Errors []FieldError
	// Event is the rejected event as MessagePack, aliasing the input.
	Event []byte
}

// DecodeMsgpack reads a dead letter. Event aliases r's input; it is nil when
// the dead letter holds nil (see [AppendDeadLetter]).
func (d *DeadLetter) DecodeMsgpack(r *Reader) error {
	*d = DeadLetter{}
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch string(r.StringBytes()) {
		case "errors":
			d.Errors = ReadFieldErrors(r, nil)
		case "event":
			d.Event = rawOrNil(r)
		default:
			r.Skip()
		}
	}
	if r.err != nil {
		return fmt.Errorf("decoding dead letter: %w", r.err)
	}
	return nil
}

// rawOrNil returns the bytes of the next value, or nil for a nil value.
func rawOrNil(r *Reader) []byte {
	if r.IsNil() {
		r.Skip()
		return nil
	}
	return r.Raw()
}
