package schemas_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the code")

// A golden pair pins the wire format: name.msgpack is what the encoder writes
// for a fixed value and must decode back to it; name.json is what
// AppendEventJSON makes of name.msgpack, indented with json.Indent (which
// keeps every token's bytes, so escaping and number formats are pinned too).
type golden struct {
	name   string
	encode func() []byte
	// check decodes the .msgpack bytes and compares them with the value.
	check func(t *testing.T, b []byte)
}

var goldens = []golden{
	{"quote_event", func() []byte { return encodeEvent(sampleQuote(), nil) }, func(t *testing.T, b []byte) {
		got, want := decodeEvent(t, b), sampleQuote()
		if !sameEvent(&got, &want) {
			t.Errorf("decoded %+v", got)
		}
	}},
	{"trade_event", func() []byte { return encodeEvent(sampleTrade(), nil) }, func(t *testing.T, b []byte) {
		got, want := decodeEvent(t, b), sampleTrade()
		if !sameEvent(&got, &want) {
			t.Errorf("decoded %+v", got)
		}
	}},
	{"enriched_quote", func() []byte { en := sampleEnrichedQuote(); return en.AppendMsgpack(nil) }, func(t *testing.T, b []byte) {
		got, want := decodeEnriched(t, b), sampleEnrichedQuote()
		if !sameEnriched(&got, &want) {
			t.Errorf("decoded %+v", got)
		}
	}},
	{"enriched_trade", func() []byte { en := sampleEnrichedTrade(); return en.AppendMsgpack(nil) }, func(t *testing.T, b []byte) {
		got, want := decodeEnriched(t, b), sampleEnrichedTrade()
		if !sameEnriched(&got, &want) {
			t.Errorf("decoded %+v", got)
		}
	}},
	{"batch_frame", goldenBatch, func(t *testing.T, b []byte) {
		r := schemas.NewReader(b)
		n, err := schemas.ReadBatchFrame(&r)
		if err != nil || n != 2 {
			t.Fatalf("ReadBatchFrame = %d, %v", n, err)
		}
		for i, want := range []schemas.Event{sampleQuote(), sampleTrade()} {
			var got schemas.Event
			if err := got.DecodeMsgpack(&r); err != nil || !sameEvent(&got, &want) {
				t.Errorf("event %d: %+v, %v", i, got, err)
			}
		}
	}},
	{"reply_frame", goldenReply, func(t *testing.T, b []byte) {
		r := schemas.NewReader(b)
		if n := r.ArrayHeader(); n != 2 {
			t.Fatalf("reply frame of %d", n)
		}
		var ok, bad schemas.Result
		if ok.DecodeMsgpack(&r) != nil || bad.DecodeMsgpack(&r) != nil {
			t.Fatal(r.Err())
		}
		en, want := decodeEnriched(t, ok.Event), sampleEnrichedQuote()
		if ok.Corr != 42 || ok.Seq != 3 || ok.Status != 200 || !sameEnriched(&en, &want) {
			t.Errorf("OK result %+v", ok)
		}
		if bad.Corr != 42 || bad.Seq != 4 || bad.Status != 422 || len(bad.Errors) != 1 || bad.Errors[0] != goldenErr {
			t.Errorf("invalid result %+v", bad)
		}
	}},
	{"dead_letter", func() []byte {
		return schemas.AppendDeadLetter(nil, []schemas.FieldError{goldenErr}, encodeEvent(sampleQuote(), nil))
	}, func(t *testing.T, b []byte) {
		var d schemas.DeadLetter
		r := schemas.NewReader(b)
		if err := d.DecodeMsgpack(&r); err != nil || len(d.Errors) != 1 || d.Errors[0] != goldenErr {
			t.Fatalf("dead letter %+v, %v", d, err)
		}
		got, want := decodeEvent(t, d.Event), sampleQuote()
		if !sameEvent(&got, &want) {
			t.Errorf("dead letter's event %+v", got)
		}
	}},
	{"load_report", func() []byte { lr := goldenLoad(); return lr.AppendMsgpack(nil) }, func(t *testing.T, b []byte) {
		var got schemas.LoadReport
		r := schemas.NewReader(b)
		if err := got.DecodeMsgpack(&r); err != nil || !reflect.DeepEqual(got, goldenLoad()) {
			t.Errorf("load report %+v, %v", got, err)
		}
	}},
}

func goldenLoad() schemas.LoadReport {
	return schemas.LoadReport{Worker: "w-1", Group: "default", PendingEvents: 300, PendingBytes: 65536, InFlight: 128,
		Rate: 250000.5, MaxRate: 900000, IntervalMS: 100,
		Origins:         []schemas.OriginLoad{{Reply: "_INBOX.a.quote", Events: 428}},
		ConsumerPending: 4096, ConsumerAckPending: 12}
}

var goldenErr = schemas.FieldError{Field: "bid", Code: schemas.CodeCrossedQuote, Detail: "bid 189.6 is above ask 189.52"}

func goldenBatch() []byte {
	b := schemas.BatchFrameHeader(nil)
	b = encodeEvent(sampleQuote(), b)
	b = encodeEvent(sampleTrade(), b)
	schemas.FinishBatchFrame(b, 2)
	return b
}

func goldenReply() []byte {
	en := sampleEnrichedQuote()
	b := schemas.AppendArrayHeader(nil, 2)
	b = schemas.AppendResultOK(b, 42, 3, &en)
	return schemas.AppendResultInvalid(b, 42, 4, []schemas.FieldError{goldenErr})
}

func goldenJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	out, err := schemas.AppendEventJSON(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, out, "", "  "); err != nil {
		t.Fatalf("AppendEventJSON gave invalid JSON: %v\n%s", err, out)
	}
	ind.WriteByte('\n')
	return ind.Bytes()
}

func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			mp := filepath.Join("testdata", g.name+".msgpack")
			js := filepath.Join("testdata", g.name+".json")
			enc := g.encode()
			if *update {
				writeFile(t, mp, enc)
				writeFile(t, js, goldenJSON(t, enc))
			}
			want, err := os.ReadFile(mp)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(enc, want) {
				t.Errorf("encoding changed from %s: the wire format is a contract\n got % x\nwant % x", mp, enc, want)
			}
			g.check(t, want)
			wantJSON, err := os.ReadFile(js)
			if err != nil {
				t.Fatal(err)
			}
			if got := goldenJSON(t, want); !bytes.Equal(got, wantJSON) {
				t.Errorf("JSON of %s changed\n got %s\nwant %s", mp, got, wantJSON)
			}
		})
	}
}

// TestReadmeHexDump keeps the annotated hex dump in README.md equal to the
// quote_event golden file: with -update it rewrites testdata/quote_event.dump,
// which README.md quotes verbatim.
func TestReadmeHexDump(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "quote_event.msgpack"))
	if err != nil {
		t.Fatal(err)
	}
	dump := annotate(b)
	path := filepath.Join("testdata", "quote_event.dump")
	if *update {
		writeFile(t, path, []byte(dump))
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if dump != string(want) {
		t.Errorf("%s is stale: run go test -run TestReadmeHexDump -update\n%s", path, dump)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), dump) {
		t.Errorf("README.md does not quote %s verbatim; paste it in:\n%s", path, dump)
	}
	// The dump's hex column is the file, byte for byte.
	var hexes []byte
	for _, line := range strings.Split(strings.TrimSpace(dump), "\n") {
		col, _, _ := strings.Cut(line, "  ")
		for _, h := range strings.Fields(col) {
			var v byte
			if _, err := fmt.Sscanf(h, "%02x", &v); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			hexes = append(hexes, v)
		}
	}
	if !bytes.Equal(hexes, b) {
		t.Errorf("dump's bytes\n% x\nfile\n% x", hexes, b)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// annotate renders MessagePack as an annotated hex dump: one line per map
// pair or element, hex first, then what it is.
func annotate(b []byte) string {
	var sb strings.Builder
	r := schemas.NewReader(b)
	annotateValue(&sb, &r, b, "", "")
	return sb.String()
}

const hexWidth = 16 // bytes per line

func annotateValue(sb *strings.Builder, r *schemas.Reader, b []byte, indent, label string) {
	start := r.Offset()
	c := r.Peek()
	var n int
	var what string
	switch {
	case c&0xf0 == 0x80 || c == 0xde || c == 0xdf:
		n = r.MapHeader()
		what = fmt.Sprintf("map, %d pairs", n)
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd:
		n = r.ArrayHeader()
		what = fmt.Sprintf("array, %d elements", n)
	default:
		raw := r.Raw()
		annotateLines(sb, raw, indent+label+describe(raw))
		return
	}
	annotateLines(sb, b[start:r.Offset()], indent+label+what)
	for i := 0; i < n; i++ {
		if c&0xf0 == 0x90 || c == 0xdc || c == 0xdd {
			annotateValue(sb, r, b, indent+"  ", fmt.Sprintf("[%d] ", i))
			continue
		}
		keyStart := r.Offset()
		key := r.String()
		valStart := r.Offset()
		if v := r.Peek(); v&0xf0 == 0x80 || v&0xf0 == 0x90 || v == 0xde || v == 0xdf || v == 0xdc || v == 0xdd {
			annotateLines(sb, b[keyStart:valStart], indent+"  "+fmt.Sprintf("%q:", key))
			annotateValue(sb, r, b, indent+"    ", "")
			continue
		}
		raw := r.Raw()
		if len(b[keyStart:r.Offset()]) <= hexWidth {
			annotateLines(sb, b[keyStart:r.Offset()], fmt.Sprintf("%s  %q: %s", indent, key, describe(raw)))
			continue
		}
		annotateLines(sb, b[keyStart:valStart], indent+"  "+fmt.Sprintf("%q:", key))
		annotateLines(sb, raw, indent+"    "+describe(raw))
	}
}

func annotateLines(sb *strings.Builder, raw []byte, comment string) {
	for i := 0; i < len(raw); i += hexWidth {
		chunk := raw[i:min(i+hexWidth, len(raw))]
		hex := fmt.Sprintf("% x", chunk)
		if i == 0 {
			fmt.Fprintf(sb, "%-*s  %s\n", hexWidth*3-1, hex, comment)
		} else {
			fmt.Fprintf(sb, "%s\n", hex)
		}
	}
}

// describe names one scalar MessagePack value.
func describe(raw []byte) string {
	r := schemas.NewReader(raw)
	c := raw[0]
	switch {
	case c == 0xc0:
		return "nil"
	case c == 0xc2 || c == 0xc3:
		return fmt.Sprint(r.Bool())
	case c == 0xcb:
		return fmt.Sprintf("float 64 %v", r.Float64())
	case c == 0xca:
		return fmt.Sprintf("float 32 %v", r.Float64())
	case r.IsInt():
		width := map[byte]string{0xcc: "uint 8", 0xcd: "uint 16", 0xce: "uint 32", 0xcf: "uint 64",
			0xd0: "int 8", 0xd1: "int 16", 0xd2: "int 32", 0xd3: "int 64"}[c]
		if width == "" {
			width = "fixint"
		}
		return fmt.Sprintf("%s %d", width, r.Int64())
	case r.IsString():
		return fmt.Sprintf("%q", r.String())
	case c == 0xd6 || c == 0xd7 || c == 0xc7:
		form := map[byte]string{0xd6: "32", 0xd7: "64", 0xc7: "96"}[c]
		ns := r.Timestamp()
		return fmt.Sprintf("timestamp (ext -1, %s-bit) %s", form, time.Unix(0, ns).UTC().Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("code %#x", c)
}
