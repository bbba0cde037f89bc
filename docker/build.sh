#!/usr/bin/env bash
# Builds the images of the compose stack without pulling anything:
#
#   docker/build.sh [sluice] [nats] [prometheus]   (default: sluice nats)
#
#   sluice:local             the static sluice binary on scratch    (docker/Dockerfile)
#   sluice-nats:local        nats-server, its configs (ops/nats/)   (docker/Dockerfile.nats)
#                            and sluice for the health check, on scratch
#   sluice-prometheus:local  Prometheus, its configuration and      (docker/Dockerfile.prometheus)
#                            rules (ops/prometheus/) and sluice for
#                            the health check, on scratch: the
#                            observability profile of docker-compose.yml
#
# Every binary is built here with CGO_ENABLED=0: sluice from ./cmd/sluice,
# nats-server from the github.com/nats-io/nats-server/v2 module pinned in
# go.mod, Prometheus from the github.com/prometheus/prometheus module at
# $SLUICE_PROMETHEUS_VERSION through the Go module proxy (its own module
# graph, not sluice's go.mod; the first build takes minutes, then the Go
# build cache serves it), with only DNS service discovery compiled in
# (build tags remove_all_sd,enable_dns_sd) and without the web UI's assets
# (the HTTP API answers; the UI pages need the npm-built assets). Debian's
# prometheus binary is linked against glibc, so it cannot run on scratch.
# Without a Go toolchain, use docker/Dockerfile.multistage instead.
#
# Environment:
#   SLUICE_IMAGE               tag of the sluice image       (default sluice:local)
#   SLUICE_NATS_IMAGE          tag of the NATS image         (default sluice-nats:local)
#   SLUICE_PROMETHEUS_IMAGE    tag of the Prometheus image   (default sluice-prometheus:local)
#   SLUICE_PROMETHEUS_VERSION  module version of Prometheus  (default v0.316.0, Prometheus 3.16.0)
#   SLUICE_VERSION             version stamped into sluice   (default: git describe, or dev)
#   SLUICE_BUILD_DIR           keep the build context here   (default: a temporary folder, removed)
#                              the binaries are left in $SLUICE_BUILD_DIR/sluice, /nats-server and /prometheus
#   GOARCH                     target architecture           (default: go env GOARCH)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sluice_image=${SLUICE_IMAGE:-sluice:local}
nats_image=${SLUICE_NATS_IMAGE:-sluice-nats:local}
prometheus_image=${SLUICE_PROMETHEUS_IMAGE:-sluice-prometheus:local}
prometheus_version=${SLUICE_PROMETHEUS_VERSION:-v0.316.0}
version=${SLUICE_VERSION:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo dev)}

images=("$@")
if [[ ${#images[@]} -eq 0 ]]; then
	images=(sluice nats)
fi
want() {
	local i
	for i in "${images[@]}"; do [[ $i == "$1" ]] && return 0; done
	return 1
}
for i in "${images[@]}"; do
	case $i in
	sluice | nats | prometheus) ;;
	*)
		echo "docker/build.sh: unknown image $i (want sluice, nats or prometheus)" >&2
		exit 2
		;;
	esac
done

out=${SLUICE_BUILD_DIR:-}
if [[ -z $out ]]; then
	out=$(mktemp -d "${TMPDIR:-/tmp}/sluice-build.XXXXXX")
	trap 'rm -rf "$out"' EXIT
fi

export CGO_ENABLED=0 GOOS=linux
GOARCH=${GOARCH:-$(go env GOARCH)}
export GOARCH

echo "==> go build sluice $version (linux/$GOARCH)"
(cd "$root" && go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out/sluice" ./cmd/sluice)
if want nats; then
	echo "==> go build nats-server $(cd "$root" && go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)"
	(cd "$root" && go build -trimpath -ldflags "-s -w" -o "$out/nats-server" github.com/nats-io/nats-server/v2)
fi
if want prometheus; then
	# Prometheus' module version v0.3XX.Y is its release 3.XX.Y.
	IFS=. read -r _ minor patch <<<"${prometheus_version#v}"
	promver="$((minor / 100)).$((minor % 100)).$patch"
	if [[ $GOARCH != "$(go env GOHOSTARCH)" ]]; then
		echo "docker/build.sh: prometheus is built with go install, which cannot cross-compile to $GOARCH here" >&2
		exit 1
	fi
	echo "==> go build prometheus $prometheus_version (Prometheus $promver; the first build takes minutes)"
	(cd "$out" && GOBIN="$out" go install -trimpath -tags remove_all_sd,enable_dns_sd \
		-ldflags "-s -w -X github.com/prometheus/common/version.Version=$promver" \
		"github.com/prometheus/prometheus/cmd/prometheus@$prometheus_version")
fi

# One small context per image, so each build sends only what it copies.
link() { ln -f "$1" "$2" 2>/dev/null || cp -f "$1" "$2"; }
label=(--label "org.opencontainers.image.source=https://github.com/sluice-dev/sluice"
	--label "org.opencontainers.image.version=$version")
if want sluice; then
	rm -rf "$out/ctx-sluice"
	mkdir -p "$out/ctx-sluice"
	link "$out/sluice" "$out/ctx-sluice/sluice"
	echo "==> docker build $sluice_image"
	docker build -q "${label[@]}" -f "$root/docker/Dockerfile" -t "$sluice_image" "$out/ctx-sluice"
fi
if want nats; then
	rm -rf "$out/ctx-nats"
	mkdir -p "$out/ctx-nats/nats" "$out/ctx-nats/data"
	link "$out/sluice" "$out/ctx-nats/sluice"
	link "$out/nats-server" "$out/ctx-nats/nats-server"
	cp "$root"/ops/nats/*.conf "$out/ctx-nats/nats/"
	echo "==> docker build $nats_image"
	docker build -q "${label[@]}" -f "$root/docker/Dockerfile.nats" -t "$nats_image" "$out/ctx-nats"
fi
if want prometheus; then
	rm -rf "$out/ctx-prometheus"
	mkdir -p "$out/ctx-prometheus/config" "$out/ctx-prometheus/data"
	link "$out/sluice" "$out/ctx-prometheus/sluice"
	link "$out/prometheus" "$out/ctx-prometheus/prometheus"
	cp "$root"/ops/prometheus/prometheus.yml "$root"/ops/prometheus/rules.yml "$root"/ops/prometheus/alerts.yml "$out/ctx-prometheus/config/"
	echo "==> docker build $prometheus_image"
	docker build -q "${label[@]}" --label "org.opencontainers.image.description=Prometheus $promver for the sluice stack" \
		-f "$root/docker/Dockerfile.prometheus" -t "$prometheus_image" "$out/ctx-prometheus"
fi
