package schemas

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultPrefix is the subject prefix when none is configured.
const DefaultPrefix = "sluice"

// Subjects names the NATS subjects of one pipeline. Several pipelines share
// a NATS cluster without meeting by using different prefixes.
type Subjects struct {
	prefix string
}

// NewSubjects validates prefix (one or more subject tokens, no wildcards;
// empty means [DefaultPrefix]) and returns its subject names.
func NewSubjects(prefix string) (Subjects, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	for _, tok := range strings.Split(prefix, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return Subjects{}, fmt.Errorf("invalid subject prefix %q: tokens must be non-empty, without wildcards or spaces", prefix)
		}
	}
	return Subjects{prefix: prefix}, nil
}

// MustSubjects is [NewSubjects] for a prefix known to be valid; it panics
// otherwise.
func MustSubjects(prefix string) Subjects {
	s, err := NewSubjects(prefix)
	if err != nil {
		panic(err)
	}
	return s
}

// Prefix returns the prefix.
func (s Subjects) Prefix() string { return s.prefixOrDefault() }

func (s Subjects) prefixOrDefault() string {
	if s.prefix == "" {
		return DefaultPrefix
	}
	return s.prefix
}

// Ingest is where the gateway publishes batch frames of kind k.
func (s Subjects) Ingest(k Kind) string { return s.prefixOrDefault() + ".ingest." + k.String() }

// IngestPartition is where the gateway publishes the batch frames of
// kind k whose events fall in partition part ([Partition]) when the type
// is durable and partitioned: [Subjects.Ingest] and the partition number.
func (s Subjects) IngestPartition(k Kind, part int) string {
	return s.Ingest(k) + "." + strconv.Itoa(part)
}

// IngestPartitions is the wildcard of every partition subject of kind k,
// the ingest stream's subject of a partitioned durable type.
func (s Subjects) IngestPartitions(k Kind) string { return s.Ingest(k) + ".*" }

// DLQ is where workers publish rejected events of kind k.
func (s Subjects) DLQ(k Kind) string { return s.prefixOrDefault() + ".dlq." + k.String() }

// Load is where the workers of group report their load.
func (s Subjects) Load(group string) string { return s.prefixOrDefault() + ".load." + group }

// Enriched is where one enriched event of kind k for symbol is published.
func (s Subjects) Enriched(k Kind, symbol string) string {
	return s.prefixOrDefault() + ".enriched." + k.String() + "." + SymbolToken(symbol)
}

// EnrichedAll is the wildcard subject of every enriched event.
func (s Subjects) EnrichedAll() string { return s.prefixOrDefault() + ".enriched.>" }

// EnrichedFilter turns a user filter into a subscription subject: "quote.AAPL",
// "quote.BRK.B" (the symbol may hold dots), "quote.*", "*.AAPL", "quote" (every
// quote) or ">" (everything). The symbol part is mapped with [SymbolToken]
// unless it is a wildcard.
func (s Subjects) EnrichedFilter(filter string) (string, error) {
	base := s.prefixOrDefault() + ".enriched."
	if filter == "" || filter == ">" {
		return base + ">", nil
	}
	kind, sym, hasSym := strings.Cut(filter, ".")
	if kind != "*" && kind != ">" {
		if _, ok := ParseKind(kind); !ok {
			return "", fmt.Errorf("filter %q: unknown type %q (want quote, trade, * or >)", filter, kind)
		}
	}
	if kind == ">" {
		return "", fmt.Errorf("filter %q: '>' must stand alone", filter)
	}
	switch {
	case !hasSym:
		return base + kind + ".>", nil
	case sym == "":
		return "", fmt.Errorf("filter %q: empty symbol", filter)
	case sym == "*" || sym == ">":
		return base + kind + "." + sym, nil
	}
	return base + kind + "." + SymbolToken(sym), nil
}

// SymbolToken maps an instrument symbol to one NATS subject token,
// reversibly: '.' becomes '_', and '_', '%', '*', '>', and every byte that is
// a space, a control character or not ASCII becomes %XX (upper-case hex).
// "BRK.B" → "BRK_B", "A_B" → "A%5FB". [TokenSymbol] reverses it.
func SymbolToken(sym string) string {
	clean := true
	for i := 0; i < len(sym); i++ {
		if c := sym[i]; c == '.' || needsEscape(c) {
			clean = false
			break
		}
	}
	if clean && sym != "" {
		return sym
	}
	return string(AppendSymbolToken(make([]byte, 0, len(sym)+8), sym))
}

// AppendSymbolToken appends [SymbolToken] of sym to b.
func AppendSymbolToken(b []byte, sym string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(sym); i++ {
		c := sym[i]
		switch {
		case c == '.':
			b = append(b, '_')
		case needsEscape(c):
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}

func needsEscape(c byte) bool {
	return c == '_' || c == '%' || c == '*' || c == '>' || c <= ' ' || c >= 0x7f
}

// TokenSymbol reverses [SymbolToken]. A token without '_' or '%' is its own
// symbol and is returned without allocating. A '%' not followed by two hex
// digits is an error.
func TokenSymbol(tok string) (string, error) {
	if !strings.ContainsAny(tok, "_%") {
		return tok, nil
	}
	var b strings.Builder
	b.Grow(len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch c {
		case '_':
			b.WriteByte('.')
		case '%':
			if i+2 >= len(tok) {
				return "", fmt.Errorf("symbol token %q: truncated escape", tok)
			}
			v, ok := unhex(tok[i+1], tok[i+2])
			if !ok {
				return "", fmt.Errorf("symbol token %q: bad escape %q", tok, tok[i:i+3])
			}
			b.WriteByte(v)
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func unhex(a, b byte) (byte, bool) {
	x, ok1 := hexVal(a)
	y, ok2 := hexVal(b)
	return x<<4 | y, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
