package ops

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// The /metrics exposition.
//
// sluice keeps its metrics in VictoriaMetrics/metrics sets: counters are
// atomic adds, and a histogram observation is one mutex-guarded add into a
// log-spaced bucket (18 per decade, VictoriaMetrics' "vmrange" buckets).
// That text has no # HELP or # TYPE lines, and plain Prometheus cannot read
// vmrange buckets (histogram_quantile wants cumulative "le" buckets with the
// same bounds on every instance). So, at scrape time only, the writer here
// rewrites what the sets print:
//
//   - every family gets its # HELP and # TYPE from the catalogue
//     (catalog.go);
//   - every histogram gets cumulative le buckets ending in +Inf, with the
//     bounds of its catalogue entry. The bounds are points of the vmrange
//     grid (10^(k/18)), so the conversion is exact: each vmrange bucket
//     lies wholly under one le bound. A histogram registered but never
//     observed is written with zero buckets, so its series exist from the
//     first scrape.
//
// The vmrange buckets themselves are not written: a family cannot hold both
// kinds of bucket for Prometheus' parser, and VictoriaMetrics reads le
// buckets natively (its histogram_quantile takes either). The observation
// path is VictoriaMetrics' own, unchanged: nothing here runs per event.

// Family describes a metric family as /metrics presents it.
type Family struct {
	// Name is the family name: a counter's name ends in _total; a
	// histogram's samples are Name_bucket, Name_sum and Name_count.
	Name string
	// Type is counter, gauge, histogram, summary or untyped.
	Type string
	// Help says what the family counts or measures, and in which unit.
	Help string
	// Buckets are a histogram's le bounds, ascending, each a point of the
	// vmrange grid (see gridBounds); nil picks one by the name's unit.
	Buckets []float64
}

// gridBounds returns the vmrange grid points 10^(from + i*step/18) from
// 10^from to 10^to, each rounded as VictoriaMetrics prints its bucket bounds
// (4 significant digits). step must divide 18.
func gridBounds(from, to, step int) []float64 {
	var b []float64
	for k := from * 18; k <= to*18; k += step {
		v := math.Pow(10, float64(k)/18)
		r, _ := strconv.ParseFloat(fmt.Sprintf("%.3e", v), 64)
		b = append(b, r)
	}
	return b
}

var (
	// secondsBuckets: 10 µs to 10 s, six bounds per decade
	// (1, 1.468, 2.154, 3.162, 4.642, 6.813 × 10^k).
	secondsBuckets = gridBounds(-5, 1, 3)
	// bytesBuckets: 100 B to 10 MB, three bounds per decade (1, 2.154, 4.642 × 10^k).
	bytesBuckets = gridBounds(2, 7, 6)
	// countBuckets: 1 to 10000, three bounds per decade.
	countBuckets = gridBounds(0, 4, 6)
)

// bucketsFor returns the le bounds of histogram family f.
func bucketsFor(f *Family) []float64 {
	switch {
	case f.Buckets != nil:
		return f.Buckets
	case strings.HasSuffix(f.Name, "_seconds"):
		return secondsBuckets
	case strings.HasSuffix(f.Name, "_bytes"):
		return bytesBuckets
	default:
		return countBuckets
	}
}

// WriteSets writes every metric of sets to w in the Prometheus text format
// (version 0.0.4), skipping nil sets: each family with its # HELP and
// # TYPE lines, histograms with cumulative le buckets. It does not write
// process metrics; the /metrics route of [Server] adds those.
func WriteSets(w io.Writer, sets ...*metrics.Set) {
	writeExposition(w, nil, false, sets)
}

var expoBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeExposition writes extra's samples (when not nil), sets, and with
// process the Go runtime and process metrics, through one rewrite so that a
// family spread over several sets is written once.
func writeExposition(w io.Writer, extra func(io.Writer), process bool, sets []*metrics.Set) {
	buf := expoBufs.Get().(*bytes.Buffer)
	defer expoBufs.Put(buf)
	buf.Reset()
	if extra != nil {
		extra(buf)
	}
	var registered []string
	for _, s := range sets {
		if s != nil {
			s.WritePrometheus(buf)
			registered = append(registered, s.ListMetricNames()...)
		}
	}
	if process {
		metrics.WriteProcessMetrics(buf)
	}
	var e exposition
	e.parse(buf.Bytes())
	e.addRegistered(registered)
	out := expoBufs.Get().(*bytes.Buffer)
	defer expoBufs.Put(out)
	out.Reset()
	e.write(out)
	w.Write(out.Bytes())
}

// exposition is one scrape's families, in the order they first appear.
type exposition struct {
	fams   []*expoFamily
	byName map[string]*expoFamily
}

type expoFamily struct {
	Family
	lines  []string // samples written as they came
	hist   []*series
	byKey  map[string]*series
	bounds []float64
}

// series is one histogram series being converted from vmrange buckets.
type series struct {
	labels     string   // without vmrange, possibly empty
	counts     []uint64 // per le bound, then +Inf; not yet cumulative
	sum, count string
}

func (e *exposition) family(name string) *expoFamily {
	if f, ok := e.byName[name]; ok {
		return f
	}
	f := &expoFamily{Family: Family{Name: name}}
	if c, ok := catalog[name]; ok {
		f.Family = c
	}
	if e.byName == nil {
		e.byName = make(map[string]*expoFamily)
	}
	e.byName[name] = f
	e.fams = append(e.fams, f)
	return f
}

// familyOf returns the family a sample name belongs to.
func (e *exposition) familyOf(name, labels string) *expoFamily {
	if _, ok := catalog[name]; ok {
		return e.family(name)
	}
	for _, suf := range [...]string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suf)
		if !ok {
			continue
		}
		if c, ok := catalog[base]; ok && (c.Type == "histogram" || c.Type == "summary") {
			return e.family(base)
		}
		if f, ok := e.byName[base]; ok && (f.Type == "histogram" || f.Type == "summary") {
			return f
		}
		if suf == "_bucket" && (strings.Contains(labels, `vmrange="`) || strings.Contains(labels, `le="`)) {
			f := e.family(base)
			if f.Type == "" {
				f.Type = "histogram"
			}
			return f
		}
	}
	f := e.family(name)
	if f.Type == "" && strings.Contains(labels, `quantile="`) {
		f.Type = "summary"
	}
	return f
}

// parse reads the text that the sets wrote.
func (e *exposition) parse(text []byte) {
	for len(text) > 0 {
		var line []byte
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, nil
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == '#' {
			e.comment(string(line))
			continue
		}
		e.sample(string(line))
	}
}

// comment keeps the help and type that a writer gave a family the
// catalogue does not know; the catalogue wins otherwise.
func (e *exposition) comment(line string) {
	f := strings.Fields(line)
	if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
		return
	}
	fam := e.family(f[2])
	if _, ok := catalog[f[2]]; ok {
		return
	}
	if f[1] == "TYPE" && len(f) > 3 {
		fam.Type = f[3]
	} else if f[1] == "HELP" {
		_, help, _ := strings.Cut(line, f[2])
		fam.Help = strings.TrimSpace(help)
	}
}

func (e *exposition) sample(line string) {
	name, labels, value := splitSample(line)
	f := e.familyOf(name, labels)
	if f.Type == "histogram" && strings.HasPrefix(name, f.Name) {
		switch suffix := name[len(f.Name):]; {
		case suffix == "_bucket" && strings.Contains(labels, `vmrange="`):
			rest, lo, hi := cutVMRange(labels)
			s := f.series(rest)
			s.add(f.bounds, lo, hi, value)
			return
		case (suffix == "_sum" || suffix == "_count") && f.byKey != nil:
			if s, ok := f.byKey[labels]; ok {
				if suffix == "_sum" {
					s.sum = value
				} else {
					s.count = value
				}
				return
			}
		}
	}
	f.lines = append(f.lines, line)
}

// series returns the converted series with labels, creating it.
func (f *expoFamily) series(labels string) *series {
	if f.byKey == nil {
		f.byKey = make(map[string]*series)
		f.bounds = bucketsFor(&f.Family)
	}
	s, ok := f.byKey[labels]
	if !ok {
		s = &series{labels: labels, counts: make([]uint64, len(f.bounds)+1), sum: "0", count: "0"}
		f.byKey[labels] = s
		f.hist = append(f.hist, s)
	}
	return s
}

// add counts a vmrange bucket (lo, hi] into the first le bound at or above
// hi. The bounds are grid points, so no vmrange bucket straddles one; the
// tolerance covers the 4-digit rounding of both sides.
func (s *series) add(bounds []float64, _, hi string, value string) {
	n, err := strconv.ParseUint(value, 10, 64)
	if err != nil {
		return
	}
	i := len(bounds) // +Inf
	if h, err := strconv.ParseFloat(hi, 64); err == nil && !math.IsInf(h, 1) {
		for j, b := range bounds {
			if h <= b*(1+1e-3) {
				i = j
				break
			}
		}
	}
	s.counts[i] += n
}

// addRegistered adds zero series for the catalogue's histograms that are
// registered in a set but were never observed (VictoriaMetrics writes
// nothing for those).
func (e *exposition) addRegistered(names []string) {
	for _, n := range names {
		name, labels, _ := splitSample(n + " 0")
		c, ok := catalog[name]
		if !ok || c.Type != "histogram" {
			continue
		}
		f := e.family(name)
		if f.byKey != nil {
			if _, ok := f.byKey[labels]; ok {
				continue
			}
		}
		f.series(labels)
	}
}

func (e *exposition) write(w *bytes.Buffer) {
	for _, f := range e.fams {
		if len(f.lines) == 0 && len(f.hist) == 0 {
			continue
		}
		help, typ := f.Help, f.Type
		if help == "" {
			help = f.Name + " (not described in sluice's ops/catalog.go)."
		}
		if typ == "" {
			typ = "untyped"
		}
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.Name, help, f.Name, typ)
		for _, s := range f.hist {
			var cum uint64
			for i, b := range f.bounds {
				cum += s.counts[i]
				writeBucket(w, f.Name, s.labels, strconv.FormatFloat(b, 'g', -1, 64), cum)
			}
			cum += s.counts[len(f.bounds)]
			writeBucket(w, f.Name, s.labels, "+Inf", cum)
			writeSeries(w, f.Name+"_sum", s.labels, s.sum)
			// The count is the +Inf bucket by definition.
			writeSeries(w, f.Name+"_count", s.labels, strconv.FormatUint(cum, 10))
		}
		for _, l := range f.lines {
			w.WriteString(l)
			w.WriteByte('\n')
		}
		if typ == "histogram" {
			writeMissingCounts(w, f)
		}
	}
}

// writeMissingCounts adds the _count of le-bucket histograms written
// without one (VictoriaMetrics writes the Go runtime's histograms as buckets
// only): the +Inf bucket's value.
func writeMissingCounts(w *bytes.Buffer, f *expoFamily) {
	var inf [][2]string // labels without le, value
	counted := map[string]bool{}
	for _, l := range f.lines {
		name, labels, value := splitSample(l)
		switch name {
		case f.Name + "_bucket":
			if rest, ok := strings.CutSuffix(labels, `le="+Inf"`); ok {
				inf = append(inf, [2]string{strings.TrimSuffix(rest, ","), value})
			}
		case f.Name + "_count":
			counted[labels] = true
		}
	}
	for _, s := range inf {
		if !counted[s[0]] {
			writeSeries(w, f.Name+"_count", s[0], s[1])
		}
	}
}

func writeBucket(w *bytes.Buffer, name, labels, le string, n uint64) {
	w.WriteString(name)
	w.WriteString("_bucket{")
	if labels != "" {
		w.WriteString(labels)
		w.WriteByte(',')
	}
	w.WriteString(`le="`)
	w.WriteString(le)
	w.WriteString(`"} `)
	w.WriteString(strconv.FormatUint(n, 10))
	w.WriteByte('\n')
}

func writeSeries(w *bytes.Buffer, name, labels, value string) {
	w.WriteString(name)
	if labels != "" {
		w.WriteByte('{')
		w.WriteString(labels)
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(value)
	w.WriteByte('\n')
}

// splitSample splits `name{labels} value` (or `name value`) into its parts;
// labels come without their braces.
func splitSample(line string) (name, labels, value string) {
	if i := strings.IndexByte(line, '{'); i >= 0 {
		if j := strings.LastIndexByte(line, '}'); j > i {
			return line[:i], line[i+1 : j], strings.TrimSpace(line[j+1:])
		}
	}
	name, value, _ = strings.Cut(line, " ")
	return name, "", strings.TrimSpace(value)
}

// cutVMRange removes the vmrange label from labels and returns the other
// labels and the range's bounds.
func cutVMRange(labels string) (rest, lo, hi string) {
	i := strings.Index(labels, `vmrange="`)
	j := strings.IndexByte(labels[i+len(`vmrange="`):], '"')
	if j < 0 {
		return labels, "", ""
	}
	r := labels[i+len(`vmrange="`) : i+len(`vmrange="`)+j]
	lo, hi, _ = strings.Cut(r, "...")
	rest = labels[:i] + labels[i+len(`vmrange="`)+j+1:]
	rest = strings.TrimSuffix(strings.TrimPrefix(rest, ","), ",")
	rest = strings.ReplaceAll(rest, ",,", ",")
	return rest, lo, hi
}
