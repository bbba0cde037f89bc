package schemas

import "fmt"

// A done frame is what a worker sends, in core delivery, to the reply
// subject of the batches it has finished (its gateway's inbox for the
// batch's kind): a MessagePack array of the batches' HeaderBatch sequence
// numbers, with HeaderFrame set to FrameDoneV1. A gateway subtracts those
// batches from the depth it counts for the group, so its view of what is
// still queued is exact rather than estimated: every batch it sent and no
// worker has reported done is in transit, queued or being processed.
// Workers coalesce the sequences of many batches into one frame (see the
// workers package); a lost frame (core NATS is at most once) is made up
// for by the gateway's expiry of batches outstanding too long.

// AppendDoneFrame appends a done frame holding seqs.
func AppendDoneFrame(b []byte, seqs []uint64) []byte {
	b = AppendArrayHeader(b, len(seqs))
	for _, s := range seqs {
		b = AppendUint(b, s)
	}
	return b
}

// ReadDoneFrame calls f with each sequence of a done frame, in order.
func ReadDoneFrame(data []byte, f func(seq uint64)) error {
	r := NewReader(data)
	n := r.ArrayHeader()
	for i := 0; i < n && r.err == nil; i++ {
		s := r.Uint64()
		if r.err == nil {
			f(s)
		}
	}
	if r.err != nil {
		return fmt.Errorf("reading done frame: %w", r.err)
	}
	return nil
}
