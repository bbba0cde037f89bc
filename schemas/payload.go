package schemas

import "fmt"

// DecodeMsgpack reads a quote payload map (the data of an event, or a body
// of application/msgpack) into q, which it resets first. Fields of the wrong
// type are marked in Invalid, not reported as errors: validation rejects
// them with a reason. Strings alias r's input.
func (q *Quote) DecodeMsgpack(r *Reader) error {
	*q = Quote{}
	q.decodeMsgpack(r)
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
	t.decodeMsgpack(r)
	if r.err != nil {
		return fmt.Errorf("decoding trade: %w", r.err)
	}
	return nil
}
