package loadgen

import (
	"errors"
	"testing"
	"time"
)

// TestMergeHistograms checks that per-connection histograms merged at the
// end give the same percentiles as one histogram that saw every value.
func TestMergeHistograms(t *testing.T) {
	all := NewHistogram()
	parts := []*shard{newShard(), newShard(), newShard()}
	for i := range 30_000 {
		d := time.Duration(100+i%9_000) * time.Microsecond
		if i%1000 == 0 {
			d = time.Duration(i) * time.Millisecond // a few slow ones
		}
		recordLatency(all, d)
		parts[i%3].record(202, d, true, 1)
	}
	var hs = []*shard{}
	hs = append(hs, parts...)
	merged := MergeHistograms(hs[0].good, hs[1].good, hs[2].good, nil)
	if merged.TotalCount() != 30_000 {
		t.Fatalf("merged %d values", merged.TotalCount())
	}
	want, got := Summarize(all), Summarize(merged)
	if want != got {
		t.Fatalf("merged %+v, want %+v", got, want)
	}
	if got.P50 < 4 || got.P50 > 5 || got.Max < 29_000 {
		t.Fatalf("percentiles %+v", got)
	}
	if (Summarize(nil) != Latency{}) || (Summarize(NewHistogram()) != Latency{}) {
		t.Fatal("empty histograms do not summarise to zero")
	}
}

// TestShardClasses checks how answers are counted: good (2xx and 422), shed
// (429, 503) and other, window or warm-up.
func TestShardClasses(t *testing.T) {
	s := newShard()
	s.record(202, time.Millisecond, true, 3)
	s.record(422, time.Millisecond, true, 1)
	s.record(503, time.Millisecond, true, 1)
	s.record(429, time.Millisecond, true, 1)
	s.record(500, time.Millisecond, true, 1)
	s.record(202, time.Millisecond, false, 1)
	s.recordError(true, errors.New("boom"))
	s.recordError(false, errors.New("boom"))
	if s.answered != 2 || s.events != 4 || s.errs != 1 || s.shed.TotalCount() != 2 || s.good.TotalCount() != 2 {
		t.Fatalf("answered %d events %d errs %d shed %d good %d", s.answered, s.events, s.errs, s.shed.TotalCount(), s.good.TotalCount())
	}
	if s.status[202] != 1 || s.allStatus[202] != 2 || s.done != 8 || s.errKinds["boom"] != 1 {
		t.Fatalf("status %v all %v done %d", s.status, s.allStatus, s.done)
	}
	if got := problems(s.allStatus, s.allErrs, 5); got != " 422:1 429:1 500:1 503:1 err:2 dropped:5" {
		t.Fatalf("problems %q", got)
	}
}
