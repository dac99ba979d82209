#!/bin/sh
# Builds the two base images the Dockerfile names without an image registry, for a
# machine that reaches Debian's mirror and crates.io but not Docker Hub:
#   debian:bookworm-slim     a debootstrap minbase root of bookworm
#   rust:$RUST-bookworm      that root plus gcc (zstd-sys compiles C) and this machine's
#                            Rust toolchain, with the CA bundle of this machine (a network
#                            that intercepts TLS needs its CA for cargo to reach crates.io)
# Then build with `--build-arg RUST_VERSION=$RUST` (scripts/docker_smoke.sh does).
# Needs root, debootstrap and a running docker daemon. Usage:
#   RUST=1.95 scripts/docker_offline_bases.sh
set -eu
DOCKER=${DOCKER:-docker}
RUST=${RUST:-$(rustc --version | cut -d' ' -f2 | cut -d. -f1,2)}
TOOLCHAIN=${TOOLCHAIN:-$(rustc --print sysroot)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

debootstrap --variant=minbase bookworm "$WORK/root" http://deb.debian.org/debian
rm -rf "$WORK"/root/var/cache/apt/archives/*.deb "$WORK"/root/var/lib/apt/lists/*
tar -C "$WORK/root" -c . | "$DOCKER" import - debian:bookworm-slim

B="$WORK/root"
cp /etc/resolv.conf "$B/etc/resolv.conf"
chroot "$B" sh -c 'apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb'
cp /etc/ssl/certs/ca-certificates.crt "$B/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$B/usr/local/rust" "$B/usr/local/cargo/bin"
tar -C "$TOOLCHAIN" --exclude=./share/doc -c . | tar -C "$B/usr/local/rust" -x
for t in cargo rustc rustdoc; do ln -s "/usr/local/rust/bin/$t" "$B/usr/local/cargo/bin/$t"; done
tar -C "$B" -c . | "$DOCKER" import \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "rust:$RUST-bookworm"
echo "built debian:bookworm-slim and rust:$RUST-bookworm"
