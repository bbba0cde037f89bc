package gateway

import (
	"net/http"
	"testing"
)

func TestPreferredReturn(t *testing.T) {
	f := func(want returnPref, values ...string) {
		t.Helper()
		h := http.Header{"Prefer": values}
		if got := preferredReturn(h); got != want {
			t.Errorf("Prefer %q: got %v, want %v", values, got, want)
		}
	}
	f(returnRepresentation, "return=representation")
	f(returnRepresentation, "respond-async, Return=Representation")
	f(returnRepresentation, "wait=5", " return=representation ")
	f(returnMinimal, "return=minimal")
	f(returnMinimal, "wait=5, RETURN=Minimal")
	f(returnMinimal, "return=minimal, return=representation")
	f(returnDefault, "return=other, return=representation") // the first return preference counts
	f(returnMinimal, "return=minimal; foo, return=representation")
	f(returnMinimal, "return=minimal;x=y")
	f(returnMinimal, "return = minimal")
	f(returnMinimal, `return="minimal"`)
	f(returnRepresentation, "wait=5", "return=representation", "return=minimal") // several headers, in order
	f(returnDefault, "return")
	f(returnDefault, "returns=minimal")
	f(returnDefault, "respond-async")
	f(returnDefault)
}
