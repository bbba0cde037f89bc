package benchmarks

import (
	"bufio"
	"maps"
	"strings"
	"testing"
)

func TestParseRejected(t *testing.T) {
	page := `# a comment
sluice_gateway_rejected_total{reason="shed",priority="normal",group="quotes"} 12
sluice_gateway_rejected_total{reason="shed",priority="low",group="quotes"} 3
sluice_gateway_rejected_total{reason="concurrency",priority="normal",group="trades"} 2
sluice_gateway_requests_total{status="503"} 17
`
	got, err := parseRejected(bufio.NewScanner(strings.NewReader(page)))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]float64{"shed": 15, "concurrency": 2}; !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := parseRejected(bufio.NewScanner(strings.NewReader(`sluice_gateway_rejected_total{reason="shed"} x`))); err == nil {
		t.Fatal("an unreadable value was accepted")
	}
}
