#!/bin/sh
# Builds the image from the top-level Dockerfile and checks it: it trains on the bundled
# data as the non-root user, on the CPU (no hardware GPU: one line says so) and on
# lavapipe (`--device gpu`: one line names the software adapter and the fix), and prints
# the build time and the image size. Needs a running docker daemon with BuildKit (the
# Dockerfile's cache mounts): docker 23+, or DOCKER_BUILDKIT=1 on 20.10. Without Docker
# Hub, build the base images first (scripts/docker_offline_bases.sh) and pass the same
# RUST_VERSION. Usage, from anywhere:
#   scripts/docker_smoke.sh                    # rust:1.90-bookworm from Docker Hub
#   RUST_VERSION=1.95 scripts/docker_smoke.sh  # a local rust:1.95-bookworm
set -eu
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-riskgrad:smoke}
# A docker CLI that builds with BuildKit: 23+ with the buildx plugin, or 20.10 (no
# plugin needed with DOCKER_BUILDKIT=1). Debian 12's docker.io is 20.10: /usr/bin/docker.
DOCKER=${DOCKER:-docker}
RUST_VERSION=${RUST_VERSION:-1.90}
export DOCKER_BUILDKIT=1

start=$(date +%s)
# --network host: the build's RUN steps (apt-get, cargo) use the host's network as is.
"$DOCKER" build --network host --build-arg "RUST_VERSION=$RUST_VERSION" -t "$IMAGE" .
echo "build: $(( $(date +%s) - start )) s"
echo "image: $("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"

user=$("$DOCKER" run --rm --entrypoint id "$IMAGE" -un)
[ "$user" = riskgrad ] || { echo "runs as $user, not riskgrad" >&2; exit 1; }

fail() { echo "$1" >&2; echo "$2" >&2; exit 1; }

# The default device: no hardware GPU here, so the CPU backend, said in one line.
out=$("$DOCKER" run --rm "$IMAGE" train --epochs 2 2>&1) || fail "train failed:" "$out"
echo "$out" | tail -n 3
echo "$out" | grep -q "no hardware GPU adapter found" || fail "no CPU line:" "$out"
echo "$out" | grep -q "wrote the model" || fail "no model written:" "$out"

# lavapipe, named: one line says it is a software adapter and how to reach the GPU.
out=$("$DOCKER" run --rm "$IMAGE" train --device gpu --epochs 1 2>&1) || fail "train --device gpu failed:" "$out"
echo "$out" | grep "software Vulkan adapter" || fail "no software-adapter note:" "$out"
[ "$(echo "$out" | grep -c "software Vulkan adapter")" = 1 ] || fail "the note is not one line:" "$out"
if echo "$out" | grep -q "MESA-LOADER"; then fail "a driver-loader warning:" "$out"; fi
echo "docker smoke: ok"
