#!/usr/bin/env bash
# The project's test command (README: ./test.sh).
# Runs every test of the workspace in release mode; extra arguments go to
# cargo test, e.g.  ./test.sh -p sip   or   ./test.sh -- --nocapture
# The SIP integration tests need `sipp` (Debian package sip-tester) on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec cargo test --workspace --release "$@"
