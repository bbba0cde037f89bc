package schemas

import "fmt"

// DecodeMsgpack reads a quote payload map as a client sends it (a body of
// application/msgpack) into q, which it resets first. Fields of the wrong
// type are marked in Invalid, not reported as errors: validation rejects
// them with a reason. nil is the same as absent, as null is in JSON bodies
// (on NATS, inside an event, nil marks an invalid field instead). Strings
// alias r's input.
func (q *Quote) DecodeMsgpack(r *Reader) error {
	*q = Quote{}
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		key := r.StringBytes()
		if r.IsNil() {
			r.Skip()
			continue
		}
		start := r.off
		bit := q.decodeField(r, key)
		q.Present, q.Invalid = markField(r, start, bit, q.Present, q.Invalid)
	}
	if r.err != nil {
		return fmt.Errorf("decoding quote: %w", r.err)
	}
	return nil
}

// DecodeMsgpack reads a trade payload map into t, as [Quote.DecodeMsgpack].
// t.Conditions' storage is reused.
func (t *Trade) DecodeMsgpack(r *Reader) error {
	conds := t.Conditions[:0]
	*t = Trade{Conditions: conds}
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		key := r.StringBytes()
		if r.IsNil() {
			r.Skip()
			continue
		}
		start := r.off
		bit := t.decodeField(r, key)
		t.Present, t.Invalid = markField(r, start, bit, t.Present, t.Invalid)
	}
	if r.err != nil {
		return fmt.Errorf("decoding trade: %w", r.err)
	}
	return nil
}
