package ops

import (
	"io"

	"github.com/VictoriaMetrics/metrics"
)

// WriteSets writes every metric of sets to w in the Prometheus text format,
// set after set, skipping nil sets. It does not write process metrics; the
// /metrics route of [Server] adds those with metrics.WriteProcessMetrics.
func WriteSets(w io.Writer, sets ...*metrics.Set) {
	for _, s := range sets {
		if s != nil {
			s.WritePrometheus(w)
		}
	}
}
