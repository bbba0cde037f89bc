#!/usr/bin/env bash
# The README's test command: go vet, every test with the race detector (in
# random order), then each fuzz target for a short budget (FUZZTIME, default
# 5000 inputs: a count, not a duration, because of a Go race at the end of
# -fuzztime durations that reports "context deadline exceeded" without any
# failing input, golang/go#75804; such a run is retried once). The budget is
# a smoke test that the targets still run and find nothing quickly: 20000
# inputs took about 11 s a target and 5 minutes in all on a 2-core machine
# 1.6 times slower than usual, which took .ci/run to 22 minutes; longer
# campaigns are FUZZTIME=10m scripts/test.sh or go test -fuzz directly.
# Tests that need Docker skip with a message where no engine runs.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5000x}

echo "== go vet ./..."
go vet ./...

# benchmarks/storebatch is its own module (orbit.go needs a newer nats.go than
# sluice): vet it too, so that its measurements keep compiling.
echo "== go vet ./... in benchmarks/storebatch"
(cd benchmarks/storebatch && go vet ./...)

echo "== go test -race -shuffle=on ./..."
go test -race -shuffle=on -timeout 20m ./...

echo "== the gateway's HTTP tests and the abuse suite on net/http's HTTP/2 server (SLUICE_HTTP2_SERVER=std)"
SLUICE_HTTP2_SERVER=std go test -race -shuffle=on -timeout 20m ./gateway/ ./gateway/abuse/

echo "== fuzz targets, ${fuzztime} each"
for dir in $(go list -f '{{.Dir}}' ./...); do
  pkg=$(go list "$dir")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    printf '   %-55s %s ... ' "$pkg" "$target"
    if out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
      echo ok
    elif ! grep -q 'Failing input written' <<<"$out" && grep -q 'context deadline exceeded' <<<"$out" &&
      out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
      echo "ok (retried: golang/go#75804)"
    else
      echo FAIL
      echo "$out"
      exit 1
    fi
  done
done
echo "== all checks passed"
