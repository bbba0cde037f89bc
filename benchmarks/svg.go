package benchmarks

import (
	"bytes"
	"fmt"
	"math"
)

// Plot geometry of the sweep SVG.
const (
	svgW, svgH         = 760, 440
	svgLeft, svgRight  = 72, 24
	svgTop, svgBottom  = 48, 64
	svgPlotW, svgPlotH = svgW - svgLeft - svgRight, svgH - svgTop - svgBottom
)

// series of the sweep plot.
var sweepSeries = []struct {
	name  string
	color string
	value func(SweepStep) float64
}{
	{"p50", "#1f77b4", func(s SweepStep) float64 { return s.Latency.P50 }},
	{"p99", "#ff7f0e", func(s SweepStep) float64 { return s.Latency.P99 }},
	{"p99.9", "#d62728", func(s SweepStep) float64 { return s.Latency.P999 }},
}

// SVG draws the sweep: p50, p99 and p99.9 latency (log scale) against
// offered rate, with the measured capacity marked. It is hand-written SVG,
// readable in any browser and in GitHub's markdown.
func (sw *Sweep) SVG(title string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", svgLeft, xmlEscape(title))
	xMax := sw.Capacity
	lo, hi := math.Inf(1), 0.0
	for _, s := range sw.Steps {
		xMax = math.Max(xMax, s.Offered)
		for _, se := range sweepSeries {
			if v := se.value(s); v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if hi == 0 {
		lo, hi = 0.1, 1
	}
	xMax = niceCeil(xMax * 1.05)
	yLo, yHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yHi <= yLo {
		yHi = yLo + 1
	}
	x := func(v float64) float64 { return svgLeft + v/xMax*svgPlotW }
	y := func(ms float64) float64 {
		return svgTop + svgPlotH - (math.Log10(math.Max(ms, math.Pow(10, yLo)))-yLo)/(yHi-yLo)*svgPlotH
	}
	writeAxes(&b, xMax, yLo, yHi, x, y)
	if sw.Capacity > 0 {
		cx := x(sw.Capacity)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#666" stroke-dasharray="5,4"/>`+"\n", cx, svgTop, cx, svgTop+svgPlotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#444">closed-loop capacity %s req/s</text>`+"\n",
			cx+4, svgTop+svgPlotH-8, thousands(sw.Capacity))
	}
	for i, se := range sweepSeries {
		var pts bytes.Buffer
		for _, s := range sw.Steps {
			if v := se.value(s); v > 0 {
				fmt.Fprintf(&pts, "%.1f,%.1f ", x(s.Offered), y(v))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", se.color, bytes.TrimSpace(pts.Bytes()))
		for _, s := range sw.Steps {
			if v := se.value(s); v > 0 {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(s.Offered), y(v), se.color)
			}
		}
		ly := svgTop + 8 + i*18
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", svgLeft+12, ly, svgLeft+36, ly, se.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", svgLeft+42, ly+4, se.name)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func writeAxes(b *bytes.Buffer, xMax, yLo, yHi float64, x, y func(float64) float64) {
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", svgLeft, svgTop, svgPlotW, svgPlotH)
	for i := 0; i <= 5; i++ {
		v := xMax * float64(i) / 5
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(v), svgTop, x(v), svgTop+svgPlotH)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(v), svgTop+svgPlotH+18, thousands(v))
	}
	for e := yLo; e <= yHi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > yHi+1e-9 {
				break
			}
			stroke := "#eee"
			if m == 1 {
				stroke = "#ccc"
			}
			fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", svgLeft, y(v), svgLeft+svgPlotW, y(v), stroke)
			fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", svgLeft-6, y(v)+4, msLabel(v))
		}
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">offered rate (requests/s, open loop)</text>`+"\n",
		svgLeft+svgPlotW/2, svgH-18)
	fmt.Fprintf(b, `<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">latency from intended send time (ms, log scale)</text>`+"\n",
		svgTop+svgPlotH/2, svgTop+svgPlotH/2)
}

func msLabel(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%g", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// niceCeil rounds v up to a round multiple of a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
