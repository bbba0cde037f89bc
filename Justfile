# Every recipe is one plain command line that also works typed by hand
# (the `just` runner is not available on every build machine; CI runs these
# lines itself).

# Start sluice with an embedded NATS server, sample reference data, the gateway and workers.
dev:
    go run ./cmd/sluice dev

# go vet, the tests with the race detector, and each fuzz target for a few seconds.
test:
    bash scripts/test.sh

# The benchmark suite (at most 5 minutes); writes benchmarks/RESULTS.md.
bench:
    go run ./cmd/sluice bench --out benchmarks/RESULTS.md

# Build the FROM-scratch images here (needs Go, pulls nothing) and start the local stack.
up:
    docker/build.sh && if docker compose version >/dev/null 2>&1; then docker compose up -d; else docker-compose up -d; fi

# The local stack with Prometheus (127.0.0.1:9092), its rules and alerts (ops/prometheus/).
up-observability:
    docker/build.sh sluice nats prometheus && if docker compose version >/dev/null 2>&1; then docker compose --profile observability up -d; else docker-compose --profile observability up -d; fi

# Stop the local stack (Prometheus too) and remove its containers, network and volumes (the NATS secrets too).
down:
    if docker compose version >/dev/null 2>&1; then docker compose --profile observability down -v --remove-orphans; else docker-compose --profile observability down -v --remove-orphans; fi
