package benchmarks

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// JSON renders res as indented JSON (results.json).
func (res *Results) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Markdown renders res as RESULTS.md.
func (res *Results) Markdown() []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# sluice benchmark results\n\n")
	w("Written by `sluice bench` on %s in %s: do not edit by hand, rerun `just bench`. ",
		res.Generated.Format("2006-01-02 15:04 MST"), res.WallTime.Round(time.Second))
	w("How the figures are made and how to read them: [README.md](README.md).\n\n")
	if res.Settings.Quick {
		w("> **Quick run** (`--quick`): every run lasts a fraction of a second. This is a smoke test; its figures mean nothing.\n\n")
	}
	if res.Settings.Profiled {
		w("> **Profiled run** (`--profile`): CPU profiles were taken during the first round of every sluice variant and not of the baselines, which skews the ratios; use it to find costs, not for figures.\n\n")
	}
	res.writeMachine(&b)
	res.writeTargets(&b)
	w("## Scenarios\n\n")
	for i := range res.Scenarios {
		res.Scenarios[i].write(&b)
	}
	return b.Bytes()
}

func (res *Results) writeMachine(b *bytes.Buffer) {
	m, st := res.Machine, res.Settings
	fmt.Fprintf(b, "## Machine and command\n\n| | |\n| --- | --- |\n")
	fmt.Fprintf(b, "| CPUs (nproc) | %d |\n| CPU | %s |\n| memory | %s GiB |\n| kernel | %s |\n| Go | %s %s |\n",
		m.CPUs, m.CPUModel, m.MemoryGiB, m.Kernel, m.GoVersion, m.OS)
	fmt.Fprintf(b, "| load average (1, 5, 15 min) | %s before, %s after |\n", m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(b, "| command | `%s` |\n", res.Command)
	fmt.Fprintf(b, "| connections | %s, %d connections × %d streams, load generator on the same machine |\n",
		st.Proto, st.Conns, st.Streams)
	if res.H2Load != "" {
		cross := res.H2Load
		if st.H2LoadDuration > 0 && strings.HasPrefix(cross, "h2load") {
			cross = fmt.Sprintf("%s, %s warm-up + %s measured, once per variant, right after its first round, same server, shape, headers and one of its bodies",
				cross, st.Warmup, st.H2LoadDuration)
		}
		fmt.Fprintf(b, "| h2load cross-check | %s |\n", cross)
	}
	fmt.Fprintf(b, "| GOMAXPROCS | workers %s, NATS %s (gateway and servers: Go's default) |\n", procs(st.WorkerProcs), procs(st.NATSProcs))
	fmt.Fprintf(b, "| runs | %s warm-up + %s measured each; %s alternating with the baselines (every other round in reverse order) |\n",
		st.Warmup, st.Duration, plural(st.Rounds, "round"))
	fmt.Fprintf(b, "| events | %.0f%% trades, %.0f%% invalid", st.TradeShare*100, st.InvalidShare*100)
	if st.SingleFormat != "" && st.SingleFormat != "json" {
		fmt.Fprintf(b, "; single events as %s", st.SingleFormat)
	}
	if st.Priority != "" {
		fmt.Fprintf(b, "; Sluice-Priority: %s", st.Priority)
	}
	fmt.Fprintf(b, "; end to end, ids matched for every invalid event and one symbol in %d |\n\n", st.SampleEvery)
}

func (res *Results) writeTargets(b *bytes.Buffer) {
	fmt.Fprintf(b, "## Targets\n\nFrom `../shared/DESIGN.md`, \"Performance targets\", checked against this run's figures.\n\n")
	fmt.Fprintf(b, "| target | goal | this run | |\n| --- | --- | --- | --- |\n")
	for _, t := range res.Targets {
		mark := t.Status
		switch t.Status {
		case Met:
			mark = "**met**"
		case NotMet:
			mark = "**not met**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Figure, mark)
	}
	b.WriteString("\n")
}

func (sc *ScenarioResult) write(b *bytes.Buffer) {
	fmt.Fprintf(b, "### %s\n\n%s\n\n", sc.Title, sc.Description)
	switch {
	case sc.Sweep != nil:
		sc.Sweep.write(b)
	case sc.Overload != nil || sc.EdgeOverload != nil:
		for _, ov := range []*Overload{sc.Overload, sc.EdgeOverload} {
			if ov != nil {
				ov.write(b)
			}
		}
	case len(sc.Rows) > 0:
		writeRows(b, sc.Rows)
	}
	for _, n := range sc.Notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	for _, r := range sc.Rows {
		if sc.Sweep == nil && sc.Overload == nil && sc.EdgeOverload == nil {
			writeRowDetails(b, r)
		}
	}
	b.WriteString("\n")
}

func writeRows(b *bytes.Buffer, rows []Row) {
	b.WriteString("| variant | req/s | events/s | p50 ms | p99 ms | p99.9 ms | CPU µs/event: edge | worker | NATS | system | loadgen | × baseline (rounds) | × naive | h2load req/s | h2load CPU µs/req |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n")
	for _, r := range rows {
		vs := ""
		if r.Baseline != "" {
			vs = fmt.Sprintf("%.2f× %s", r.VsBaseline, r.Baseline)
			if len(r.RoundRatios) > 1 {
				vs += " (" + joinRatios(r.RoundRatios) + ")"
			}
		}
		naive := ""
		if r.Naive != "" {
			naive = fmt.Sprintf("%.2f×", r.VsNaive)
		}
		h2rate, h2cpu := "–", "–"
		if h := r.H2Load; h != nil && h.Err == "" {
			h2rate, h2cpu = thousands(h.ReqPerSec), fmt.Sprintf("%.2f", h.CPU)
		}
		fmt.Fprintf(b, "| `%s` %s | %s | %s | %.2f | %.2f | %.2f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Variant, r.Label, thousands(r.ReqPerSec), thousands(r.EventsPerSec), r.Latency.P50, r.Latency.P99, r.Latency.P999,
			cpuCell(r, RoleEdge), cpuCell(r, RoleWorker), cpuCell(r, RoleNATS), fmt.Sprintf("%.2f", r.SystemCPU),
			cpuCell(r, RoleLoadgen), vs, naive, h2rate, h2cpu)
	}
	b.WriteString("\n")
}

func cpuCell(r Row, role Role) string {
	v, ok := r.CPU[role]
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

// writeRowDetails adds what a table cannot hold: answers other than 2xx,
// errors, and the end-to-end count.
func writeRowDetails(b *bytes.Buffer, r Row) {
	if p := statusProblems(r.Status, r.Errors, r.Dropped); p != "" {
		fmt.Fprintf(b, "- `%s`: %s%s%s\n", r.Variant, p, errorKinds(r.ErrorKinds), rejectedReasons(r.Rejected))
	}
	if h := r.H2Load; h != nil {
		other := maps.Clone(h.Status)
		delete(other, "2xx")
		switch {
		case h.Err != "":
			fmt.Fprintf(b, "- `%s` h2load: no figures: %s\n", r.Variant, h.Err)
		case len(other) > 0 || h.Failed > 0:
			parts := []string{fmt.Sprintf("%s without an answer", thousands(float64(h.Failed)))}
			for _, class := range slices.Sorted(maps.Keys(other)) {
				parts = append(parts, fmt.Sprintf("%s × %s", thousands(float64(other[class])), class))
			}
			fmt.Fprintf(b, "- `%s` h2load: of %s requests, %s\n", r.Variant, thousands(float64(h.Requests)), strings.Join(parts, ", "))
		}
	}
	if e := r.E2E; e != nil {
		fmt.Fprintf(b, "- `%s` end to end: %s events accepted; of the %s matched by id, %s enriched, %s rejected (%s sent invalid), %s missing",
			r.Variant, thousands(float64(e.Accepted)), thousands(float64(e.Sampled)), thousands(float64(e.Enriched)),
			thousands(float64(e.Rejected)), thousands(float64(e.ExpectedRejected)), thousands(float64(e.Missing)))
		if e.SlowConsumerDrops > 0 {
			fmt.Fprintf(b, " (the observer dropped %s: missing is overstated)", thousands(float64(e.SlowConsumerDrops)))
		}
		b.WriteString("\n")
	}
}

// rejectedReasons formats a gateway's refusals by reason.
func rejectedReasons(rej map[string]float64) string {
	if len(rej) == 0 {
		return ""
	}
	reasons := slices.Sorted(maps.Keys(rej))
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s %s", r, thousands(rej[r]))
	}
	return "; refused by the gateway: " + strings.Join(parts, ", ")
}

// errorKinds formats the most frequent error messages.
func errorKinds(kinds map[string]uint64) string {
	if len(kinds) == 0 {
		return ""
	}
	msgs := slices.SortedFunc(maps.Keys(kinds), func(a, b string) int {
		if kinds[a] != kinds[b] {
			return cmp.Compare(kinds[b], kinds[a])
		}
		return strings.Compare(a, b)
	})
	if len(msgs) > 3 {
		msgs = msgs[:3]
	}
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = fmt.Sprintf("%q × %s", m, thousands(float64(kinds[m])))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// statusProblems lists the answers that were not 2xx, errors and drops.
func statusProblems(status map[int]uint64, errs, dropped uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(status)) {
		if k < 200 || k >= 300 {
			parts = append(parts, fmt.Sprintf("%s × %d %s", thousands(float64(status[k])), k, http.StatusText(k)))
		}
	}
	if errs > 0 {
		parts = append(parts, fmt.Sprintf("%s without an answer", thousands(float64(errs))))
	}
	if dropped > 0 {
		parts = append(parts, fmt.Sprintf("%s dropped by the generator (in-flight bound reached)", thousands(float64(dropped))))
	}
	return strings.Join(parts, ", ")
}

func (sw *Sweep) write(b *bytes.Buffer) {
	fmt.Fprintf(b, "Capacity (closed-loop publish maximum): %s req/s.\n\n", thousands(sw.Capacity))
	if sw.Plot != "" {
		fmt.Fprintf(b, "![p50, p99 and p99.9 latency against offered rate](%s)\n\n", sw.Plot)
	}
	b.WriteString("| offered req/s | of capacity | achieved req/s | p50 ms | p99 ms | p99.9 ms | system CPU µs/event | shed | dropped | errors |\n")
	b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range sw.Steps {
		fmt.Fprintf(b, "| %s | %.0f%% | %s | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |\n",
			thousands(s.Offered), s.Fraction*100, thousands(s.Achieved), s.Latency.P50, s.Latency.P99, s.Latency.P999,
			s.SystemCPU, thousands(float64(s.Shed)), thousands(float64(s.Dropped)), thousands(float64(s.Errors)))
	}
	b.WriteString("\n")
}

func (ov *Overload) write(b *bytes.Buffer) {
	fmt.Fprintf(b, "#### bottleneck: %s\n\n", ov.Bottleneck)
	b.WriteString("| | |\n| --- | --- |\n")
	fmt.Fprintf(b, "| capacity | %s req/s: %s |\n", thousands(ov.Capacity), ov.CapacityHow)
	fmt.Fprintf(b, "| offered | %s req/s for %s |\n", thousands(ov.Offered), ov.Duration)
	fmt.Fprintf(b, "| goodput | %s req/s, %.0f%% of capacity |\n", thousands(ov.Goodput), ov.GoodputRatio*100)
	fmt.Fprintf(b, "| admitted latency | p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms |\n",
		ov.Admitted.P50, ov.Admitted.P99, ov.Admitted.P999, ov.Admitted.Max)
	if ov.UnloadedP99 > 0 {
		fmt.Fprintf(b, "| unloaded p99 | %.2f ms (%s) |\n", ov.UnloadedP99, ov.UnloadedHow)
	}
	fmt.Fprintf(b, "| shed (429, 503) | %s; latency p50 %.2f ms, p99 %.2f ms, max %.2f ms |\n",
		thousands(float64(ov.Shed)), ov.ShedLatency.P50, ov.ShedLatency.P99, ov.ShedLatency.Max)
	if len(ov.Rejected) > 0 {
		reasons := slices.Sorted(maps.Keys(ov.Rejected))
		parts := make([]string, len(reasons))
		for i, r := range reasons {
			parts[i] = fmt.Sprintf("%s %s", r, thousands(ov.Rejected[r]))
		}
		fmt.Fprintf(b, "| refused, by the gateway's reason | %s (sluice_gateway_rejected_total over the window) |\n", strings.Join(parts, ", "))
	}
	if r := ov.Reference; r != nil {
		answering := ""
		if ov.ReferenceRate > 0 {
			answering = fmt.Sprintf(", answering %s req/s", thousands(ov.ReferenceRate))
		}
		fmt.Fprintf(b, "| baseline server at the same offered rate | p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms over %s%s: the floor this machine and generator put under any answer |\n",
			r.P50, r.P99, r.P999, r.Max, ov.Duration, answering)
	}
	if ov.Dropped > 0 {
		fmt.Fprintf(b, "| dropped by the generator | %s (in-flight bound reached: the excess never reached the gateway) |\n",
			thousands(float64(ov.Dropped)))
	}
	other := maps.Clone(ov.Status)
	delete(other, http.StatusServiceUnavailable)
	delete(other, http.StatusTooManyRequests)
	if p := statusProblems(other, ov.Errors, 0); p != "" {
		fmt.Fprintf(b, "| other answers | %s |\n", p)
	}
	rss := make([]string, len(ov.RSS))
	for i, v := range ov.RSS {
		rss[i] = fmt.Sprintf("%.0f", float64(v)/(1<<20))
	}
	bounded := "no"
	if ov.RSSBounded {
		bounded = "yes"
	}
	fmt.Fprintf(b, "| gateway memory | peak RSS %s; RSS each second (MiB): %s; bounded: %s |\n", mib(ov.PeakRSS), strings.Join(rss, " "), bounded)
	if e := ov.E2E; e != nil {
		fmt.Fprintf(b, "| end to end | %s accepted; of the %s matched by id, %s enriched, %s rejected (%s sent invalid), %s missing |\n",
			thousands(float64(e.Accepted)), thousands(float64(e.Sampled)), thousands(float64(e.Enriched)),
			thousands(float64(e.Rejected)), thousands(float64(e.ExpectedRejected)), thousands(float64(e.Missing)))
		if d := e.Delay; d.Count > 0 {
			fmt.Fprintf(b, "| queueing behind the 202 | gateway receipt to enriched on NATS, %s observed events: p50 %.2f ms, p99 %.2f ms, max %.2f ms |\n",
				thousands(float64(d.Count)), d.P50, d.P99, d.Max)
		}
	}
	b.WriteString("\n")
}

// procs names a GOMAXPROCS setting, 0 being Go's default.
func procs(n int) string {
	if n <= 0 {
		return "Go's default"
	}
	return strconv.Itoa(n)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
