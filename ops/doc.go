// Package ops holds what every sluice process needs to be run and watched:
// the ops HTTP listener with Prometheus metrics, liveness and readiness
// checks and pprof; the slog logger built from flags; configuration through
// flags backed by SLUICE_* environment variables; and the embedded NATS
// server used by `sluice dev` and by tests.
//
// /metrics is the Prometheus text format: every family with the help and
// type of its entry in the catalogue ([LookupFamily]), histograms with
// cumulative le buckets converted at scrape time from VictoriaMetrics'
// vmrange buckets. The Prometheus configuration, recording rules and alerts
// of the compose stack are in ops/prometheus/, the runbook in ops/README.md.
//
// GET / on the ops listener is a live dashboard: one self-contained page fed
// once a second over server-sent events by a sampler that reads the same
// metric sets as /metrics, started with the first open page and stopped
// with the last (see [ServerOptions].DashboardClients).
//
// It stands beside the data flow (schemas → gateway → NATS → workers →
// enrich), not in it: the subcommands of cmd/sluice wire it next to the
// packages that move events, and nothing on the hot path calls into it. It
// depends on no other sluice package. Test helpers built on it live in
// package [github.com/sluice-dev/sluice/ops/opstest].
package ops
