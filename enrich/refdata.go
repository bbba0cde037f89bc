package enrich

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sluice-dev/sluice/schemas"
)

// RefData is a complete set of reference data: the instruments that events
// may name and the FX rates that convert their currencies to US dollars.
//
// The JSON form is
//
//	{"instruments": [{"symbol": "AAPL", "name": "Apple Inc.", "mic": "XNAS",
//	  "currency": "USD", "isin": "US0378331005", "asset_class": "equity",
//	  "tick_size": 0.01, "lot_size": 1}, ...],
//	 "fx": [{"currency": "USD", "usd_rate": 1}, {"currency": "GBX", "usd_rate": 0.0127}, ...]}
//
// A listing quoted in a minor unit (pence, "GBX") has its own FX rate, the
// value of one minor unit in dollars.
type RefData struct {
	Instruments []schemas.Instrument `json:"instruments"`
	FX          []schemas.FXRate     `json:"fx"`
}

//go:embed sample/refdata.json
var sampleJSON []byte

// Sample returns the reference data embedded in the binary from
// sample/refdata.json: over a hundred well-known listings (BRK.B, VOD.L in
// pence, 7203.T in yen, ...) with an FX rate for each of their currencies,
// enough for demos, tests and benchmarks. Each call parses the file again and
// returns a copy that the caller may modify.
func Sample() *RefData {
	rd, err := ParseRefData(bytes.NewReader(sampleJSON))
	if err != nil {
		// The embedded file is tested; reaching this is a build defect.
		panic("enrich: embedded sample/refdata.json is invalid: " + err.Error())
	}
	return rd
}

// LoadFile reads and validates reference data from the JSON file at path,
// as [ParseRefData] does.
func LoadFile(path string) (*RefData, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading reference data: %w", err)
	}
	defer f.Close()
	rd, err := ParseRefData(f)
	if err != nil {
		return nil, fmt.Errorf("loading reference data from %s: %w", path, err)
	}
	return rd, nil
}

// ParseRefData decodes one JSON document of reference data from r and
// validates it with [RefData.Validate]. Decoding is strict: an unknown field,
// a value of the wrong type or anything after the document is an error.
// On error the returned *RefData is nil; a validation error lists every
// problem found, one per line.
func ParseRefData(r io.Reader) (*RefData, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var rd RefData
	if err := dec.Decode(&rd); err != nil {
		return nil, fmt.Errorf("decoding reference data: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decoding reference data: unexpected data after the JSON document")
	}
	if err := rd.Validate(); err != nil {
		return nil, err
	}
	return &rd, nil
}

// Validate checks rd and returns nil or an error listing every problem (as
// [errors.Join] does). The rules:
//   - it holds at least one instrument or FX rate;
//   - a symbol is non-empty, made of A-Z a-z 0-9 and . - _ / only, and
//     unique;
//   - a currency is three upper-case letters A-Z, and unique among FX rates;
//   - tick_size and lot_size are >= 0; usd_rate is > 0.
//
// Each problem names the entry by its index in its list and its symbol or
// currency, e.g. `instrument 3 ("FOO"): currency "US" is not a 3-letter code`.
// Validate does not require an FX rate for every instrument's currency:
// without one, trades in that currency fail enrichment, quotes do not.
func (rd *RefData) Validate() error {
	if len(rd.Instruments) == 0 && len(rd.FX) == 0 {
		return errors.New("reference data holds no instruments and no FX rates")
	}
	var errs []error
	seen := make(map[string]int, len(rd.Instruments))
	for i := range rd.Instruments {
		in := &rd.Instruments[i]
		if err := validateInstrument(in); err != nil {
			errs = append(errs, fmt.Errorf("instrument %d (%q): %w", i, in.Symbol, err))
			continue
		}
		if first, dup := seen[in.Symbol]; dup {
			errs = append(errs, fmt.Errorf("instrument %d (%q): duplicate symbol, first at instrument %d", i, in.Symbol, first))
			continue
		}
		seen[in.Symbol] = i
	}
	seenFX := make(map[string]int, len(rd.FX))
	for i, fx := range rd.FX {
		if err := validateFX(fx); err != nil {
			errs = append(errs, fmt.Errorf("fx %d (%q): %w", i, fx.Currency, err))
			continue
		}
		if first, dup := seenFX[fx.Currency]; dup {
			errs = append(errs, fmt.Errorf("fx %d (%q): duplicate currency, first at fx %d", i, fx.Currency, first))
			continue
		}
		seenFX[fx.Currency] = i
	}
	return errors.Join(errs...)
}

// validateInstrument checks one instrument on its own (not its uniqueness).
func validateInstrument(in *schemas.Instrument) error {
	var errs []error
	if err := validateSymbol(in.Symbol); err != nil {
		errs = append(errs, err)
	}
	if !isCurrency(in.Currency) {
		errs = append(errs, fmt.Errorf("currency %q is not a 3-letter code", in.Currency))
	}
	if !(in.TickSize >= 0) { // also rejects NaN
		errs = append(errs, fmt.Errorf("tick_size %v is negative", in.TickSize))
	}
	if in.LotSize < 0 {
		errs = append(errs, fmt.Errorf("lot_size %d is negative", in.LotSize))
	}
	return joinFlat(errs)
}

// validateFX checks one FX rate on its own (not its uniqueness).
func validateFX(fx schemas.FXRate) error {
	var errs []error
	if !isCurrency(fx.Currency) {
		errs = append(errs, fmt.Errorf("currency %q is not a 3-letter code", fx.Currency))
	}
	if !(fx.USDRate > 0) { // also rejects NaN
		errs = append(errs, fmt.Errorf("usd_rate %v is not positive", fx.USDRate))
	}
	return joinFlat(errs)
}

func validateSymbol(s string) error {
	if s == "" {
		return errors.New("symbol is empty")
	}
	for i := 0; i < len(s); i++ {
		if !isSymbolByte(s[i]) {
			return fmt.Errorf("symbol %q has %q at byte %d: only A-Z a-z 0-9 . - _ / are allowed", s, s[i], i)
		}
	}
	return nil
}

func isSymbolByte(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	return c == '.' || c == '-' || c == '_' || c == '/'
}

func isCurrency(s string) bool {
	return len(s) == 3 && isUpper(s[0]) && isUpper(s[1]) && isUpper(s[2])
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// joinFlat joins errs on one line with "; ", so that a problem of one entry
// stays on the line that names the entry.
func joinFlat(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msg := errs[0].Error()
	for _, err := range errs[1:] {
		msg += "; " + err.Error()
	}
	return errors.New(msg)
}
