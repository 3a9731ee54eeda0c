#!/usr/bin/env bash
# bench/cores.sh - per-operation cost of the sans-IO cores, without sockets:
#   * relay: ns per `on_packet` (1M packets over 1,000 channels);
#   * transactions: REGISTER server transactions per second through the layer.
# These are the two #[ignore]d measurement tests; they print figures and assert nothing
# (no timing assertions in tests: this machine is shared). Release build, bounded to 600 s.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
timeout 600 cargo test --release -q -p relay -- --ignored --nocapture 2>&1 | grep -vE "^(running|test result|$)"
timeout 600 cargo test --release -q -p sip-proto throughput -- --ignored --nocapture 2>&1 | grep -vE "^(running|test result|$)"
