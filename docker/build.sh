#!/usr/bin/env bash
# Builds the images of the compose stack without pulling anything:
#
#   sluice:local       the static sluice binary on scratch   (docker/Dockerfile)
#   sluice-nats:local  nats-server, its configs (ops/nats/)  (docker/Dockerfile.nats)
#                      and sluice for the health check, on scratch
#
# Both binaries are built here with CGO_ENABLED=0: sluice from ./cmd/sluice,
# nats-server from the github.com/nats-io/nats-server/v2 module pinned in
# go.mod. Without a Go toolchain, use docker/Dockerfile.multistage instead.
#
# Environment:
#   SLUICE_IMAGE       tag of the sluice image       (default sluice:local)
#   SLUICE_NATS_IMAGE  tag of the NATS image         (default sluice-nats:local)
#   SLUICE_VERSION     version stamped into sluice   (default: git describe, or dev)
#   SLUICE_BUILD_DIR   keep the build context here   (default: a temporary folder, removed)
#                      the binaries are left in $SLUICE_BUILD_DIR/sluice and /nats-server
#   GOARCH             target architecture           (default: go env GOARCH)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sluice_image=${SLUICE_IMAGE:-sluice:local}
nats_image=${SLUICE_NATS_IMAGE:-sluice-nats:local}
version=${SLUICE_VERSION:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo dev)}

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
echo "==> go build nats-server $(cd "$root" && go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)"
(cd "$root" && go build -trimpath -ldflags "-s -w" -o "$out/nats-server" github.com/nats-io/nats-server/v2)

# One small context per image, so each build sends only what it copies.
rm -rf "$out/ctx-sluice" "$out/ctx-nats"
mkdir -p "$out/ctx-sluice" "$out/ctx-nats/nats" "$out/ctx-nats/data"
link() { ln -f "$1" "$2" 2>/dev/null || cp -f "$1" "$2"; }
link "$out/sluice" "$out/ctx-sluice/sluice"
link "$out/sluice" "$out/ctx-nats/sluice"
link "$out/nats-server" "$out/ctx-nats/nats-server"
cp "$root"/ops/nats/*.conf "$out/ctx-nats/nats/"

label=(--label "org.opencontainers.image.source=https://github.com/sluice-dev/sluice"
	--label "org.opencontainers.image.version=$version")
echo "==> docker build $sluice_image"
docker build -q "${label[@]}" -f "$root/docker/Dockerfile" -t "$sluice_image" "$out/ctx-sluice"
echo "==> docker build $nats_image"
docker build -q "${label[@]}" -f "$root/docker/Dockerfile.nats" -t "$nats_image" "$out/ctx-nats"
