package enrich_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/enrich"
)

const smallFile = "testdata/refdata_small.json"

// badRefData pairs documents that ParseRefData must reject with a part of
// the error it must give. It also seeds FuzzParseRefData.
var badRefData = []struct {
	name, doc, want string
}{
	{"empty input", ``, "decoding reference data: EOF"},
	{"not json", `instruments:`, "decoding reference data: invalid character"},
	{"null", `null`, "holds no instruments and no FX rates"},
	{"empty object", `{}`, "holds no instruments and no FX rates"},
	{"empty lists", `{"instruments": [], "fx": []}`, "holds no instruments and no FX rates"},
	{"unknown top-level field", `{"instruments": [], "rates": []}`, `unknown field "rates"`},
	{"unknown instrument field", `{"instruments": [{"symbol": "A", "currency": "USD", "sector": "x"}]}`, `unknown field "sector"`},
	{"wrong type", `{"instruments": [{"symbol": "A", "currency": "USD", "lot_size": "1"}]}`, "cannot unmarshal string"},
	{"fractional lot size", `{"instruments": [{"symbol": "A", "currency": "USD", "lot_size": 1.5}]}`, "cannot unmarshal number 1.5"},
	{"trailing data", `{"fx": [{"currency": "USD", "usd_rate": 1}]} {}`, "unexpected data after the JSON document"},
	{"trailing garbage", `{"fx": [{"currency": "USD", "usd_rate": 1}]} x`, "decoding reference data"},
	{"empty symbol", `{"instruments": [{"symbol": "", "currency": "USD"}]}`, `instrument 0 (""): symbol is empty`},
	{"space in symbol", `{"instruments": [{"symbol": "A", "currency": "USD"}, {"symbol": "BRK B", "currency": "USD"}]}`,
		`instrument 1 ("BRK B"): symbol "BRK B" has ' ' at byte 3: only A-Z a-z 0-9 . - _ / are allowed`},
	{"wildcard in symbol", `{"instruments": [{"symbol": "A*", "currency": "USD"}]}`, `instrument 0 ("A*"): symbol "A*" has '*'`},
	{"non-ascii symbol", `{"instruments": [{"symbol": "ÄBC", "currency": "USD"}]}`, `symbol "ÄBC" has`},
	{"duplicate symbol", `{"instruments": [{"symbol": "A", "currency": "USD"}, {"symbol": "B", "currency": "USD"}, {"symbol": "A", "currency": "EUR"}]}`,
		`instrument 2 ("A"): duplicate symbol, first at instrument 0`},
	{"short currency", `{"instruments": [{"symbol": "A", "currency": "USD"}, {"symbol": "B", "currency": "USD"}, {"symbol": "C", "currency": "USD"}, {"symbol": "FOO", "currency": "US"}]}`,
		`instrument 3 ("FOO"): currency "US" is not a 3-letter code`},
	{"lower-case currency", `{"instruments": [{"symbol": "A", "currency": "usd"}]}`, `instrument 0 ("A"): currency "usd" is not a 3-letter code`},
	{"missing currency", `{"instruments": [{"symbol": "A"}]}`, `instrument 0 ("A"): currency "" is not a 3-letter code`},
	{"negative tick size", `{"instruments": [{"symbol": "A", "currency": "USD", "tick_size": -0.01}]}`, `instrument 0 ("A"): tick_size -0.01 is negative`},
	{"negative lot size", `{"instruments": [{"symbol": "A", "currency": "USD", "lot_size": -1}]}`, `instrument 0 ("A"): lot_size -1 is negative`},
	{"two problems in one instrument", `{"instruments": [{"symbol": "A", "currency": "US", "lot_size": -1}]}`,
		`instrument 0 ("A"): currency "US" is not a 3-letter code; lot_size -1 is negative`},
	{"fx bad currency", `{"fx": [{"currency": "USD", "usd_rate": 1}, {"currency": "EURO", "usd_rate": 1.08}]}`, `fx 1 ("EURO"): currency "EURO" is not a 3-letter code`},
	{"fx zero rate", `{"fx": [{"currency": "GBX", "usd_rate": 0}]}`, `fx 0 ("GBX"): usd_rate 0 is not positive`},
	{"fx missing rate", `{"fx": [{"currency": "GBX"}]}`, `fx 0 ("GBX"): usd_rate 0 is not positive`},
	{"fx negative rate", `{"fx": [{"currency": "GBX", "usd_rate": -1}]}`, `fx 0 ("GBX"): usd_rate -1 is not positive`},
	{"fx duplicate", `{"fx": [{"currency": "USD", "usd_rate": 1}, {"currency": "USD", "usd_rate": 1}]}`, `fx 1 ("USD"): duplicate currency, first at fx 0`},
}

func TestParseRefDataRejects(t *testing.T) {
	for _, tc := range badRefData {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := enrich.ParseRefData(strings.NewReader(tc.doc))
			if err == nil {
				t.Fatalf("ParseRefData(%s) = %+v, want an error containing %q", tc.doc, rd, tc.want)
			}
			if rd != nil {
				t.Errorf("ParseRefData returned %+v with its error, want nil", rd)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseRefData error:\n  %v\nwant it to contain:\n  %s", err, tc.want)
			}
		})
	}
}

func TestParseRefDataListsEveryProblem(t *testing.T) {
	doc := `{"instruments": [{"symbol": "", "currency": "USD"}, {"symbol": "B", "currency": "XX"}],
	         "fx": [{"currency": "USD", "usd_rate": 0}]}`
	_, err := enrich.ParseRefData(strings.NewReader(doc))
	if err == nil {
		t.Fatal("ParseRefData accepted three problems")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`instrument 0 (""): symbol is empty`,
		`instrument 1 ("B"): currency "XX" is not a 3-letter code`,
		`fx 0 ("USD"): usd_rate 0 is not positive`,
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("error lines:\n%q\nwant:\n%q", lines, want)
	}
}

func TestParseRefDataAccepts(t *testing.T) {
	// Only FX rates, only instruments, every symbol character, trailing space.
	docs := []string{
		`{"fx": [{"currency": "USD", "usd_rate": 1}]}`,
		`{"instruments": [{"symbol": "Az09.-_/", "currency": "USD"}]}` + "\n\t ",
	}
	for _, doc := range docs {
		if _, err := enrich.ParseRefData(strings.NewReader(doc)); err != nil {
			t.Errorf("ParseRefData(%s): %v", doc, err)
		}
	}
}

func TestLoadFile(t *testing.T) {
	rd, err := enrich.LoadFile(smallFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(rd.Instruments) != 7 || len(rd.FX) != 4 {
		t.Fatalf("loaded %d instruments and %d rates, want 7 and 4", len(rd.Instruments), len(rd.FX))
	}
	got := rd.Instruments[1]
	if got.Symbol != "BRK.B" || got.Currency != "USD" || got.TickSize != 0.01 || got.LotSize != 1 || got.MIC != "XNYS" {
		t.Errorf("instrument 1 = %+v", got)
	}
	if rd.FX[1].Currency != "GBX" || rd.FX[1].USDRate != 0.0127 {
		t.Errorf("fx 1 = %+v", rd.FX[1])
	}
}

func TestLoadFileErrors(t *testing.T) {
	_, err := enrich.LoadFile("testdata/no-such-file.json")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	path := t.TempDir() + "/bad.json"
	writeFile(t, path, `{"fx": [{"currency": "usd", "usd_rate": 1}]}`)
	_, err = enrich.LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `fx 0 ("usd")`) {
		t.Errorf("bad file: %v, want the path and the entry", err)
	}
}

func TestSample(t *testing.T) {
	rd := enrich.Sample()
	if n := len(rd.Instruments); n < 100 {
		t.Errorf("sample has %d instruments, want >= 100", n)
	}
	rates := make(map[string]bool)
	for _, fx := range rd.FX {
		rates[fx.Currency] = true
	}
	currencies := make(map[string]bool)
	var brk bool
	for _, in := range rd.Instruments {
		brk = brk || in.Symbol == "BRK.B"
		currencies[in.Currency] = true
		if !rates[in.Currency] {
			t.Errorf("instrument %q: no FX rate for its currency %q", in.Symbol, in.Currency)
		}
	}
	if !brk {
		t.Error("sample has no BRK.B")
	}
	for _, c := range []string{"USD", "GBX", "JPY"} {
		if !currencies[c] {
			t.Errorf("sample lists no instrument in %s", c)
		}
	}
	if err := rd.Validate(); err != nil {
		t.Error(err)
	}
}

func TestSampleReturnsACopy(t *testing.T) {
	a := enrich.Sample()
	a.Instruments[0].Symbol = "CHANGED"
	if b := enrich.Sample(); b.Instruments[0].Symbol == "CHANGED" {
		t.Error("Sample shares its result between calls")
	}
}

// FuzzParseRefData checks that ParseRefData never panics, and that what it
// accepts is valid and survives a round trip through JSON unchanged.
func FuzzParseRefData(f *testing.F) {
	for _, tc := range badRefData {
		f.Add([]byte(tc.doc))
	}
	f.Add(readFile(f, smallFile))
	f.Fuzz(func(t *testing.T, doc []byte) {
		rd, err := enrich.ParseRefData(bytes.NewReader(doc))
		if err != nil {
			return
		}
		if err := rd.Validate(); err != nil {
			t.Fatalf("accepted data fails Validate: %v", err)
		}
		b, err := json.Marshal(rd)
		if err != nil {
			t.Fatal(err)
		}
		again, err := enrich.ParseRefData(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("re-encoded data is rejected: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(normalize(rd), normalize(again)) {
			t.Fatalf("round trip changed the data:\n%+v\n%+v", rd, again)
		}
	})
}

// normalize makes nil and empty lists compare equal.
func normalize(rd *enrich.RefData) enrich.RefData {
	out := *rd
	if len(out.Instruments) == 0 {
		out.Instruments = nil
	}
	if len(out.FX) == 0 {
		out.FX = nil
	}
	return out
}
