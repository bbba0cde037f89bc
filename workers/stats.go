package workers

import "time"

// statsInterval is how often a worker reads its subscriptions' drop and
// pending counts into its metrics.
var statsInterval = time.Second

// pollStats reads the subscriptions' drop and pending counts every
// statsInterval until stopStats.
func (w *Worker) pollStats() {
	defer close(w.statsDone)
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.readStats()
		case <-w.statsStop:
			w.readStats()
			return
		}
	}
}

func (w *Worker) stopStats() {
	select {
	case <-w.statsStop:
	default:
		close(w.statsStop)
	}
	<-w.statsDone
}

// readStats adds the drops since the last read to the metrics and sets the
// queued gauge. The NATS client counts drops per subscription; a closed
// subscription reports nothing more.
func (w *Worker) readStats() {
	queued := len(w.queue)
	for _, s := range w.subs {
		if s.sub == nil {
			continue
		}
		if d, err := s.sub.Dropped(); err == nil && d > s.dropped {
			w.pl.m.drops.Add(d - s.dropped)
			w.dropped.Add(uint64(d - s.dropped))
			s.dropped = d
		}
		if n, _, err := s.sub.Pending(); err == nil {
			queued += n
		}
	}
	w.pl.m.queued.Set(float64(queued))
}

// Stats are a worker's counts since New.
type Stats struct {
	// Batches counts the batch frames received.
	Batches uint64
	// Enriched and Rejected count the events published as enriched events
	// and as dead letters.
	Enriched, Rejected uint64
	// Replies counts the reply frames published.
	Replies uint64
	// DecodeErrors counts frames cut short and events whose data did not
	// decode.
	DecodeErrors uint64
	// Dropped counts the batches the NATS client dropped past the pending
	// limits, as of the last stats read (every second, and at Shutdown).
	Dropped uint64
	// Queued is the number of batches waiting in the queue now.
	Queued int
}

// Stats returns the worker's counts. Safe for concurrent use.
func (w *Worker) Stats() Stats {
	return Stats{
		Batches:      w.pl.batches.Load(),
		Enriched:     w.pl.enriched.Load(),
		Rejected:     w.pl.rejected.Load(),
		Replies:      w.pl.replies.Load(),
		DecodeErrors: w.pl.decodeErrors.Load(),
		Dropped:      w.dropped.Load(),
		Queued:       len(w.queue),
	}
}

// Processed returns the number of events processed to the end: published as
// enriched events or as dead letters.
func (w *Worker) Processed() uint64 { return w.pl.enriched.Load() + w.pl.rejected.Load() }
