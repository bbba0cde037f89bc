package workers

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"

	"go.opentelemetry.io/otel/trace"
)

// pipeline is what every processing goroutine of a worker shares: read-only
// configuration, metrics and counters. Nothing in it takes a lock.
type pipeline struct {
	group    string
	subjects schemas.Subjects
	source   string
	limits   schemas.Limits
	enricher *enrich.Enricher
	now      func() int64
	log      *slog.Logger
	// stages are the built-in validate and enrich stages, then
	// Options.Stages.
	stages []Stage
	kinds  map[schemas.Kind]*kindState
	m      workerMetrics
	tracer trace.Tracer // nil: tracing off
	// maxDeliver and nakDelay settle durable batches that fail; storeHold
	// bounds how long a durable batch's store is retried in place (its
	// AckWait) before it is nakked.
	maxDeliver int
	nakDelay   time.Duration
	storeHold  time.Duration

	// Counters for Stats, kept apart from the metrics because a metrics.Set
	// may be shared by several workers.
	batches, enriched, rejected, replies, decodeErrors atomic.Uint64

	decodeLog, publishLog, stageLog logLimiter
}

// kindState is the per-kind configuration of a pipeline.
type kindState struct {
	kind     schemas.Kind
	dlq      string
	m        *kindMetrics
	spanName string // of its batches' spans
}

// newPipeline builds the pipeline of o, whose defaults are set.
func newPipeline(o *Options) *pipeline {
	p := &pipeline{
		group:    o.Group,
		subjects: o.Subjects,
		source:   o.Source,
		limits:   o.Limits,
		enricher: o.Enricher,
		now:      o.Now,
		log:      o.Logger,
		kinds:    make(map[schemas.Kind]*kindState, len(o.Kinds)),
		m:        newWorkerMetrics(o.Metrics, o.Group),
		tracer:   o.Tracing.Tracer(),

		maxDeliver: o.MaxDeliver,
		nakDelay:   o.NakDelay,
		storeHold:  o.AckWait,
	}
	for _, k := range o.Kinds {
		p.kinds[k] = &kindState{kind: k, dlq: o.Subjects.DLQ(k), m: newKindMetrics(o.Metrics, o.Group, k),
			spanName: "process " + o.Subjects.Ingest(k)}
	}
	p.stages = append([]Stage{StageFunc(p.validate), StageFunc(p.enrich)}, o.Stages...)
	if o.StageCost > 0 {
		p.stages = append(p.stages, stageCost(o.StageCost))
	}
	if o.StageDelay > 0 {
		p.stages = append(p.stages, stageDelay(o.StageDelay))
	}
	return p
}

// validate is the built-in validation stage: it records the failures of
// every event not rejected yet.
func (p *pipeline) validate(_ context.Context, b *Batch) error {
	for i := 0; i < b.n; i++ {
		if len(b.errs[i]) == 0 {
			b.errs[i] = schemas.Validate(&b.events[i], b.Now, p.limits, b.errs[i])
		}
	}
	return nil
}

// enrich is the built-in enrichment stage: it fills the enriched form of
// every valid event, or rejects it (unknown_instrument).
func (p *pipeline) enrich(_ context.Context, b *Batch) error {
	for i := 0; i < b.n; i++ {
		if len(b.errs[i]) != 0 {
			continue
		}
		b.errs[i] = p.enricher.Enrich(&b.events[i], b.Now, &b.out[i], b.errs[i])
		if len(b.errs[i]) == 0 {
			b.out[i].Source = p.source
		}
	}
	return nil
}

// logLimiter lets through at most one log line a second and counts the
// others, so that a flood of bad batches cannot flood the logs.
type logLimiter struct {
	last       atomic.Int64
	suppressed atomic.Uint64
}

// allow reports whether to log now, and how many lines it suppressed since
// the last one it allowed.
func (l *logLimiter) allow() (bool, uint64) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(time.Second) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}
