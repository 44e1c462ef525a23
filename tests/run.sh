#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (the tests that need
# root — network namespaces, nftables, private buses as other users — run when root and say
# why they skip otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/build-deps.sh --tests
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets --no-fail-fast
