package schemas

import "fmt"

// LoadReport is what every worker publishes on <prefix>.load.<group> at a
// fixed short interval: the depth of its own queue and how fast it drains.
// Gateways aggregate the reports of a group to decide admission.
type LoadReport struct {
	// Worker identifies the reporting process (unique per process).
	Worker string
	// Group is the worker group.
	Group string
	// PendingEvents are events received and not yet processed: in the
	// worker's queue and in its subscriptions' pending buffers.
	PendingEvents int64
	// PendingBytes are the bytes of the same batches.
	PendingBytes int64
	// InFlight are events being processed now.
	InFlight int64
	// Rate is the events processed per second over the last interval.
	Rate float64
	// MaxRate estimates the events per second the worker drains when busy:
	// events processed per second of processing time, times its
	// concurrency. It is known before the worker is ever saturated, so
	// gateways size their queue bounds from it; 0 until the first event.
	MaxRate float64
	// IntervalMS is the report interval in milliseconds: a report older than
	// a few intervals means the worker is gone.
	IntervalMS int64
	// Stopping is true in the last report of a worker that is draining.
	Stopping bool
	// Origins splits PendingEvents + InFlight by the reply subject of the
	// batches that brought them (one per gateway and kind), so that a
	// gateway, which counts its own batches exactly through done frames,
	// adds only the other gateways' share from the report. Origins with
	// nothing outstanding are left out.
	Origins []OriginLoad
	// ConsumerPending is, in durable delivery, the batches stored in the
	// ingest stream and not yet delivered to any worker of the group: the
	// NumPending of the group's durable consumer, read by this worker once
	// per report interval; 0 in core delivery. Every worker of a group
	// reports the same consumer, so a gateway takes the freshest report's
	// value, not the sum.
	ConsumerPending int64
	// ConsumerAckPending is, in durable delivery, the batches delivered to
	// the group's workers and not yet acknowledged (the consumer's
	// NumAckPending), read with ConsumerPending; 0 in core delivery.
	ConsumerAckPending int64
}

// OriginLoad is the events a worker holds from one origin.
type OriginLoad struct {
	// Reply is the reply subject of the origin's batches.
	Reply string
	// Events are received and not yet finished.
	Events int64
}

// AppendMsgpack appends lr as a MessagePack map.
func (lr *LoadReport) AppendMsgpack(b []byte) []byte {
	b = AppendMapHeader(b, 12)
	b = append(b, "\xa6worker"...)
	b = AppendString(b, lr.Worker)
	b = append(b, "\xa5group"...)
	b = AppendString(b, lr.Group)
	b = append(b, "\xaepending_events"...)
	b = AppendInt(b, lr.PendingEvents)
	b = append(b, "\xadpending_bytes"...)
	b = AppendInt(b, lr.PendingBytes)
	b = append(b, "\xa9in_flight"...)
	b = AppendInt(b, lr.InFlight)
	b = append(b, "\xa4rate"...)
	b = AppendFloat64(b, lr.Rate)
	b = append(b, "\xa8max_rate"...)
	b = AppendFloat64(b, lr.MaxRate)
	b = append(b, "\xabinterval_ms"...)
	b = AppendInt(b, lr.IntervalMS)
	b = append(b, "\xa8stopping"...)
	b = AppendBool(b, lr.Stopping)
	b = append(b, "\xa7origins"...)
	b = AppendArrayHeader(b, len(lr.Origins))
	for _, o := range lr.Origins {
		b = AppendMapHeader(b, 2)
		b = append(b, "\xa5reply"...)
		b = AppendString(b, o.Reply)
		b = append(b, "\xa6events"...)
		b = AppendInt(b, o.Events)
	}
	b = append(b, "\xb0consumer_pending"...)
	b = AppendInt(b, lr.ConsumerPending)
	b = append(b, "\xb4consumer_ack_pending"...)
	b = AppendInt(b, lr.ConsumerAckPending)
	return b
}

// DecodeMsgpack reads a load report; strings alias r's input, and
// lr.Origins is reused.
func (lr *LoadReport) DecodeMsgpack(r *Reader) error {
	origins := lr.Origins[:0]
	*lr = LoadReport{}
	n := r.MapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch string(r.StringBytes()) {
		case "worker":
			lr.Worker = r.String()
		case "group":
			lr.Group = r.String()
		case "pending_events":
			lr.PendingEvents = r.Int64()
		case "pending_bytes":
			lr.PendingBytes = r.Int64()
		case "in_flight":
			lr.InFlight = r.Int64()
		case "rate":
			lr.Rate = r.Float64()
		case "max_rate":
			lr.MaxRate = r.Float64()
		case "interval_ms":
			lr.IntervalMS = r.Int64()
		case "stopping":
			lr.Stopping = r.Bool()
		case "origins":
			origins = decodeOrigins(r, origins)
		case "consumer_pending":
			lr.ConsumerPending = r.Int64()
		case "consumer_ack_pending":
			lr.ConsumerAckPending = r.Int64()
		default:
			r.Skip()
		}
	}
	lr.Origins = origins
	if r.err != nil {
		return fmt.Errorf("decoding load report: %w", r.err)
	}
	return nil
}

func decodeOrigins(r *Reader, dst []OriginLoad) []OriginLoad {
	n := r.ArrayHeader()
	for i := 0; i < n && r.err == nil; i++ {
		var o OriginLoad
		m := r.MapHeader()
		for j := 0; j < m && r.err == nil; j++ {
			switch string(r.StringBytes()) {
			case "reply":
				o.Reply = r.String()
			case "events":
				o.Events = r.Int64()
			default:
				r.Skip()
			}
		}
		dst = append(dst, o)
	}
	return dst
}

// LoadAll is the wildcard subject of every group's load reports.
func (s Subjects) LoadAll() string { return s.prefixOrDefault() + ".load.*" }
