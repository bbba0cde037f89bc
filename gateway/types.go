package gateway

import (
	"net/http"

	"github.com/sluice-dev/sluice/schemas"
)

// handleTypes serves GET /v1/types: every event type with its CloudEvents
// types and the JSON Schema of its payload.
func (s *Server) handleTypes(w http.ResponseWriter, r *http.Request) {
	b := []byte(`{"types":[`)
	for i, k := range schemas.Kinds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = schemas.AppendJSONString(b, k.String())
		b = append(b, `,"path":`...)
		b = schemas.AppendJSONString(b, "/v1/events/"+k.String())
		b = append(b, `,"type":`...)
		b = schemas.AppendJSONString(b, k.CEType())
		b = append(b, `,"enriched_type":`...)
		b = schemas.AppendJSONString(b, k.EnrichedType())
		b = append(b, `,"subject":`...)
		subject := s.opts.Subjects.Ingest(k)
		if s.parts[k] != nil {
			subject = s.opts.Subjects.IngestPartitions(k)
		}
		b = schemas.AppendJSONString(b, subject)
		b = append(b, `,"schema":`...)
		if sch := schemas.JSONSchema(k); sch != nil {
			b = append(b, sch...)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	w.Header()["Content-Type"] = jsonContentType
	_, _ = w.Write(b)
	s.m.status(http.StatusOK)
}
