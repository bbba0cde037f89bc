package schemas

import "embed"

//go:embed jsonschema/*.json
var jsonSchemas embed.FS

// JSONSchema returns the JSON Schema (draft 2020-12) of the HTTP payload of
// kind k, version 1, or nil for an unknown kind.
func JSONSchema(k Kind) []byte {
	if k.CEType() == "" {
		return nil
	}
	b, err := jsonSchemas.ReadFile("jsonschema/" + k.String() + ".v1.json")
	if err != nil {
		return nil
	}
	return b
}
