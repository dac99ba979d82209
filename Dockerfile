# riskgrad in a container: a Rust builder stage, then a Debian slim runtime with the
# Vulkan loader and Mesa's drivers (lavapipe, the software fallback). The bundled Taiwan
# data and the WGSL shaders are compiled into the binary, so the image holds one file of
# riskgrad's. On an NVIDIA host run it with the `graphics` driver capability, which is
# what mounts the host's Vulkan driver (README, "Running in a container"):
#
#   docker build -t riskgrad .
#   docker run --rm --gpus all -e NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
#       --user "$(id -u):$(id -g)" -v "$PWD/models:/work/models" \
#       riskgrad train --out models/loans

# 1.90: the oldest Rust the locked dependencies build with (ordered-float 5.5, under
# wgpu-hal, asks for it).
ARG RUST_VERSION=1.90

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# Only what the build reads: the manifest names the benches, so they come too. The binary
# is stripped on the way out (`install -s`): the release profile's line tables are for
# profiling on a workstation (149 MB of binary; 22 MB stripped).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY shaders ./shaders
COPY data ./data
COPY benches ./benches
# The cached target/ judges freshness by modification times, and COPY keeps the
# context's: a source older than the cached build (an edit made while the last build
# ran, a tarball of an older release) would give a stale binary. Touching the crate
# roots recompiles riskgrad (not its dependencies) whenever this step runs at all.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    touch src/lib.rs src/main.rs \
    && cargo build --release --locked --bin riskgrad \
    && install -s -m 0755 target/release/riskgrad /usr/local/bin/riskgrad

FROM debian:bookworm-slim
# libvulkan1: the Vulkan loader wgpu opens. mesa-vulkan-drivers: lavapipe, so that
# `--device gpu` runs somewhere without a GPU. libegl1 and libxext6: what the NVIDIA
# Vulkan driver the container toolkit mounts from the host links against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libvulkan1 mesa-vulkan-drivers libegl1 libxext6 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/riskgrad /usr/local/bin/riskgrad
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin riskgrad \
    && mkdir /work && chown riskgrad:riskgrad /work
USER riskgrad
WORKDIR /work
# Without this the NVIDIA runtime mounts only compute and utility (CUDA and nvidia-smi):
# no Vulkan driver. `docker run -e NVIDIA_DRIVER_CAPABILITIES=...` overrides it.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
# Vulkan only: riskgrad's GPU path is Vulkan here (the host's NVIDIA driver, or lavapipe),
# and wgpu's GL probe through libEGL would print a MESA-LOADER warning about a swrast
# driver the image does not carry on every `--device gpu` run.
ENV WGPU_BACKEND=vulkan
ENTRYPOINT ["riskgrad"]
CMD ["--help"]
