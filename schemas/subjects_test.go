package schemas_test

import (
	"strings"
	"testing"
	"testing/quick"
	"unicode"

	"github.com/sluice-dev/sluice/schemas"
)

func TestSymbolToken(t *testing.T) {
	tests := []struct{ sym, tok string }{
		{"AAPL", "AAPL"},
		{"BRK.B", "BRK_B"},
		{"BF.B", "BF_B"},
		{"A_B", "A%5FB"},
		{"X%Y", "X%25Y"},
		{"*", "%2A"},
		{">", "%3E"},
		{"A B", "A%20B"},
		{"EUR/USD", "EUR/USD"},
		{"7203.T", "7203_T"},
		{"ÄÖ", "%C3%84%C3%96"},
		{"\t\x00\x7f", "%09%00%7F"},
		{"a.b.c", "a_b_c"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := schemas.SymbolToken(tc.sym); got != tc.tok {
			t.Errorf("SymbolToken(%q) = %q, want %q", tc.sym, got, tc.tok)
		}
		if got := string(schemas.AppendSymbolToken([]byte("p."), tc.sym)); got != "p."+tc.tok {
			t.Errorf("AppendSymbolToken(%q) = %q", tc.sym, got)
		}
		if got, err := schemas.TokenSymbol(tc.tok); err != nil || got != tc.sym {
			t.Errorf("TokenSymbol(%q) = %q, %v; want %q", tc.tok, got, err, tc.sym)
		}
	}
}

func TestTokenSymbolLenient(t *testing.T) {
	// Lower-case hex and escapes SymbolToken would not write are read.
	tests := []struct{ tok, sym string }{{"A%5fB", "A_B"}, {"%41", "A"}, {"x%2e", "x."}}
	for _, tc := range tests {
		if got, err := schemas.TokenSymbol(tc.tok); err != nil || got != tc.sym {
			t.Errorf("TokenSymbol(%q) = %q, %v; want %q", tc.tok, got, err, tc.sym)
		}
	}
}

func TestTokenSymbolErrors(t *testing.T) {
	for _, tok := range []string{"%", "A%", "A%4", "%4G", "%G4", "%%41"} {
		if got, err := schemas.TokenSymbol(tok); err == nil {
			t.Errorf("TokenSymbol(%q) = %q, want an error", tok, got)
		}
	}
}

// checkToken reports what is wrong with tok as the token of sym.
func checkToken(sym, tok string) string {
	if strings.ContainsAny(tok, ".*>") {
		return "holds a dot or a wildcard"
	}
	if strings.ContainsFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || r < ' ' || r >= 0x7f }) {
		return "holds whitespace, a control character or non-ASCII"
	}
	if (tok == "") != (sym == "") {
		return "is empty"
	}
	back, err := schemas.TokenSymbol(tok)
	if err != nil || back != sym {
		return "does not map back: " + back
	}
	return ""
}

func TestSymbolTokenProperty(t *testing.T) {
	f := func(sym string) bool {
		if msg := checkToken(sym, schemas.SymbolToken(sym)); msg != "" {
			t.Logf("SymbolToken(%q) %s", sym, msg)
			return false
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 5000}); err != nil {
		t.Error(err)
	}
	// Random bytes, not only valid UTF-8.
	g := func(b []byte) bool { return f(string(b)) }
	if err := quick.Check(g, &quick.Config{MaxCount: 5000}); err != nil {
		t.Error(err)
	}
}

func TestSymbolTokenCleanDoesNotAllocate(t *testing.T) {
	sym := "AAPL"
	if n := testing.AllocsPerRun(100, func() {
		if schemas.SymbolToken(sym) != sym {
			t.Fatal("changed")
		}
		if s, _ := schemas.TokenSymbol(sym); s != sym {
			t.Fatal("changed")
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestSubjects(t *testing.T) {
	s := schemas.MustSubjects("")
	tests := []struct{ got, want string }{
		{s.Prefix(), "sluice"},
		{s.Ingest(schemas.KindQuote), "sluice.ingest.quote"},
		{s.DLQ(schemas.KindTrade), "sluice.dlq.trade"},
		{s.Load("default"), "sluice.load.default"},
		{s.Enriched(schemas.KindQuote, "BRK.B"), "sluice.enriched.quote.BRK_B"},
		{s.EnrichedAll(), "sluice.enriched.>"},
		{schemas.MustSubjects("cell1.tenant-a").Ingest(schemas.KindTrade), "cell1.tenant-a.ingest.trade"},
		{schemas.Subjects{}.Ingest(schemas.KindQuote), "sluice.ingest.quote"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestNewSubjectsRejects(t *testing.T) {
	for _, p := range []string{".", "a.", ".a", "a..b", "a*", "*", ">", "a.>", "a b", "a\tb", "a\nb", "a\r"} {
		if _, err := schemas.NewSubjects(p); err == nil {
			t.Errorf("NewSubjects(%q) accepted", p)
		}
	}
	for _, p := range []string{"sluice", "a.b.c", "tenant-1", "x_y"} {
		if s, err := schemas.NewSubjects(p); err != nil || s.Prefix() != p {
			t.Errorf("NewSubjects(%q) = %v, %v", p, s.Prefix(), err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustSubjects of a bad prefix did not panic")
		}
	}()
	schemas.MustSubjects("a..b")
}

func TestEnrichedFilter(t *testing.T) {
	s := schemas.MustSubjects("p")
	tests := []struct {
		filter, want string
		err          bool
	}{
		{"quote.AAPL", "p.enriched.quote.AAPL", false},
		{"quote.BRK.B", "p.enriched.quote.BRK_B", false},
		{"trade.A_B", "p.enriched.trade.A%5FB", false},
		{"quote.*", "p.enriched.quote.*", false},
		{"quote.>", "p.enriched.quote.>", false},
		{"*.AAPL", "p.enriched.*.AAPL", false},
		{"*", "p.enriched.*.>", false},
		{"*.*", "p.enriched.*.*", false},
		{"quote", "p.enriched.quote.>", false},
		{"trade", "p.enriched.trade.>", false},
		{">", "p.enriched.>", false},
		{"", "p.enriched.>", false},
		{"quote.A*", "p.enriched.quote.A%2A", false},
		{"option", "", true},
		{"option.AAPL", "", true},
		{"Quote.AAPL", "", true},
		{">.AAPL", "", true},
		{"quote.", "", true},
		{".AAPL", "", true},
	}
	for _, tc := range tests {
		got, err := s.EnrichedFilter(tc.filter)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("EnrichedFilter(%q) = %q, %v; want %q (error %v)", tc.filter, got, err, tc.want, tc.err)
		}
	}
}
