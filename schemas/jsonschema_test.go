package schemas_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/schemas"
)

type jsonSchema struct {
	Schema     string                     `json:"$schema"`
	Title      string                     `json:"title"`
	Type       string                     `json:"type"`
	Required   []string                   `json:"required"`
	Properties map[string]json.RawMessage `json:"properties"`
	Examples   []map[string]any           `json:"examples"`
}

func TestJSONSchema(t *testing.T) {
	tests := []struct {
		kind     schemas.Kind
		required []string
		props    []string
		mic      string // the property holding the MIC pattern
	}{
		{schemas.KindQuote, []string{"symbol", "bid", "ask", "bid_size", "ask_size"},
			[]string{"symbol", "bid", "ask", "bid_size", "ask_size", "venue", "ts"}, "venue"},
		{schemas.KindTrade, []string{"symbol", "price", "size", "venue"},
			[]string{"symbol", "price", "size", "venue", "ts", "trade_id", "conditions"}, "venue"},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			raw := schemas.JSONSchema(tc.kind)
			var s jsonSchema
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if s.Schema != "https://json-schema.org/draft/2020-12/schema" || s.Title != tc.kind.CEType() || s.Type != "object" {
				t.Errorf("header %q %q %q", s.Schema, s.Title, s.Type)
			}
			if !slices.Equal(s.Required, tc.required) {
				t.Errorf("required = %v, want %v", s.Required, tc.required)
			}
			var props []string
			for p := range s.Properties {
				props = append(props, p)
			}
			slices.Sort(props)
			want := slices.Sorted(slices.Values(tc.props))
			if !slices.Equal(props, want) {
				t.Errorf("properties = %v, want %v", props, want)
			}
			var venue struct{ Pattern string }
			if err := json.Unmarshal(s.Properties[tc.mic], &venue); err != nil || venue.Pattern != "^[A-Z0-9]{4}$" {
				t.Errorf("venue pattern %q, %v", venue.Pattern, err)
			}
			re := regexp.MustCompile(venue.Pattern)
			if !re.MatchString("XNAS") || re.MatchString("nasdaq") {
				t.Error("venue pattern does not agree with Validate")
			}
			if len(s.Examples) == 0 {
				t.Fatal("no example")
			}
			for _, r := range s.Required {
				if _, ok := s.Examples[0][r]; !ok {
					t.Errorf("example lacks required %q", r)
				}
			}
			// Callers get their own copy.
			raw[0] = 'X'
			if schemas.JSONSchema(tc.kind)[0] != '{' {
				t.Error("JSONSchema returns shared storage")
			}
		})
	}
	if schemas.JSONSchema(schemas.KindUnknown) != nil {
		t.Error("schema for KindUnknown")
	}
}

// TestJSONSchemaBounds checks that the published bounds are the ones
// Validate applies by default.
func TestJSONSchemaBounds(t *testing.T) {
	type prop struct {
		Type             string   `json:"type"`
		ExclusiveMinimum *float64 `json:"exclusiveMinimum"`
		Minimum          *float64 `json:"minimum"`
		Maximum          *float64 `json:"maximum"`
	}
	for kind, fields := range map[schemas.Kind][]string{
		schemas.KindQuote: {"bid", "ask", "bid_size", "ask_size"},
		schemas.KindTrade: {"price", "size"},
	} {
		var s jsonSchema
		if err := json.Unmarshal(schemas.JSONSchema(kind), &s); err != nil {
			t.Fatal(err)
		}
		for _, name := range fields {
			var p prop
			if err := json.Unmarshal(s.Properties[name], &p); err != nil {
				t.Fatalf("%v %s: %v", kind, name, err)
			}
			switch p.Type {
			case "number":
				if p.ExclusiveMinimum == nil || *p.ExclusiveMinimum != 0 || p.Maximum == nil || *p.Maximum != schemas.DefaultMaxPrice {
					t.Errorf("%v %s: %+v, want (0, %g]", kind, name, p, float64(schemas.DefaultMaxPrice))
				}
			case "integer":
				if p.Minimum == nil || *p.Minimum != 0 || p.Maximum == nil || *p.Maximum != schemas.DefaultMaxSize {
					t.Errorf("%v %s: %+v, want [0, %d]", kind, name, p, schemas.DefaultMaxSize)
				}
			default:
				t.Errorf("%v %s: type %q", kind, name, p.Type)
			}
		}
	}
}
