package loadgen

import (
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// outcome classes of an answer.
const (
	classGood  = iota // 2xx, or 422: the answer the API promises
	classShed         // 429 or 503: refused by admission
	classOther        // any other status
)

func classify(status int) int {
	switch {
	case status >= 200 && status < 300, status == http.StatusUnprocessableEntity:
		return classGood
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		return classShed
	}
	return classOther
}

// shard records the outcomes of the requests of one connection. Every
// request goroutine of the connection records into it under its mutex: on a
// few cores the lock is nearly never contended, and a histogram per
// connection rather than per goroutine keeps a run with thousands of streams
// in a few megabytes. Shards merge at the end of a run.
type shard struct {
	mu sync.Mutex
	// Measured window only.
	good, shed *hdrhistogram.Histogram
	status     map[int]uint64
	errs       uint64 // transport errors and unfinished requests
	errKinds   map[string]uint64
	answered   uint64 // good answers
	events     uint64 // events in good answers
	ids        idSample
	// Since the start of the run, for the progress line.
	interval  *hdrhistogram.Histogram
	done      uint64
	allStatus map[int]uint64
	allErrs   uint64
}

func newShard() *shard {
	return &shard{good: NewHistogram(), interval: NewHistogram(),
		status: map[int]uint64{}, allStatus: map[int]uint64{}}
}

// record counts one answer. measured tells whether the request belongs to
// the measured window; events is the number of events it carried.
func (s *shard) record(status int, lat time.Duration, measured bool, events int) {
	s.mu.Lock()
	s.done++
	s.allStatus[status]++
	recordLatency(s.interval, lat)
	if measured {
		s.status[status]++
		switch classify(status) {
		case classGood:
			recordLatency(s.good, lat)
			s.answered++
			s.events += uint64(events)
		case classShed:
			if s.shed == nil {
				s.shed = NewHistogram()
			}
			recordLatency(s.shed, lat)
		}
	}
	s.mu.Unlock()
}

// maxErrorKinds bounds the distinct error messages a shard keeps.
const maxErrorKinds = 8

// recordError counts a request that got no answer, and its message.
func (s *shard) recordError(measured bool, err error) {
	s.mu.Lock()
	s.done++
	s.allErrs++
	if measured {
		s.errs++
		msg := err.Error()
		if _, ok := s.errKinds[msg]; ok || len(s.errKinds) < maxErrorKinds {
			if s.errKinds == nil {
				s.errKinds = map[string]uint64{}
			}
			s.errKinds[msg]++
		}
	}
	s.mu.Unlock()
}

// snapshot is a shard's progress since the last snapshot.
type snapshot struct {
	done      uint64
	allStatus map[int]uint64
	allErrs   uint64
}

// takeInterval merges the shard's interval histogram into into, resets it,
// and returns its cumulative counters.
func (s *shard) takeInterval(into *hdrhistogram.Histogram) snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	into.Merge(s.interval)
	s.interval.Reset()
	return snapshot{done: s.done, allStatus: maps.Clone(s.allStatus), allErrs: s.allErrs}
}
