#!/usr/bin/env bash
# Checks that the workspace builds with the Rust it declares as its minimum (`rust-version` in
# Cargo.toml): `cargo +VERSION check` of every target, the toolchain installed through rustup
# (minimal profile) when missing. Part of `make check`.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
if [ -z "$version" ]; then
  echo "msrv: no rust-version in Cargo.toml" >&2
  exit 1
fi
if ! command -v rustup >/dev/null 2>&1; then
  echo "msrv: WARNING: rustup is not installed, so the rust-version $version check did not run" >&2
  exit 0
fi
if ! rustup run "$version" rustc --version >/dev/null 2>&1; then
  echo "msrv: installing Rust $version (rustup, minimal profile)"
  rustup toolchain install "$version" --profile minimal
fi
echo "msrv: cargo +$version check --workspace --all-targets"
cargo "+$version" check --workspace --all-targets --locked
