package decode

import (
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/sluice-dev/sluice/schemas"
)

var update = flag.Bool("update", false, "rewrite the .msgpack golden files from their .json pairs")

// TestGoldenPairs decodes each testdata/golden/<name>.json request body and
// the <name>.msgpack beside it (the same payloads as MessagePack, written
// by msgpack/v5 with -update): both must give the same events.
func TestGoldenPairs(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, jf := range files {
		name := strings.TrimSuffix(filepath.Base(jf), ".json")
		t.Run(name, func(t *testing.T) {
			kind := schemas.KindQuote
			if strings.HasPrefix(name, "trade") {
				kind = schemas.KindTrade
			}
			js, err := os.ReadFile(jf)
			if err != nil {
				t.Fatal(err)
			}
			mf := strings.TrimSuffix(jf, ".json") + ".msgpack"
			if *update {
				writeGoldenMsgpack(t, js, mf)
			}
			mp, err := os.ReadFile(mf)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGoldenPairs -update)", err)
			}
			fromJSON, singleJ, derr := Body(kind, http.Header{"Content-Type": {"application/json"}}, js, 100, nil)
			if derr != nil {
				t.Fatalf("json: %v", derr)
			}
			fromMP, singleM, derr := Body(kind, http.Header{"Content-Type": {"application/msgpack"}}, mp, 100, nil)
			if derr != nil {
				t.Fatalf("msgpack: %v", derr)
			}
			if singleJ != singleM || !reflect.DeepEqual(fromJSON, fromMP) {
				t.Errorf("json and msgpack differ:\n json %+v\n  mp  %+v", fromJSON, fromMP)
			}
		})
	}
}

// writeGoldenMsgpack re-encodes a JSON body with msgpack/v5: integers stay
// integers, null stays nil (and is dropped: null is absent in both).
func writeGoldenMsgpack(t *testing.T, js []byte, path string) {
	t.Helper()
	var v any
	if err := unmarshalNumbers(js, &v); err != nil {
		t.Fatal(err)
	}
	b, err := msgpack.Marshal(numbers(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// numbers turns json.Numbers into int64 or float64 and drops null members.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			x[k] = numbers(e)
		}
	case []any:
		for i := range x {
			x[i] = numbers(x[i])
		}
	}
	return v
}
